"""The dashboard's log reads and writes: order_id, causation chains, traces, masking, APIs, admin."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model

from contracts import Customer, Line, OrderConfirmed, OrderRequested, PaymentRequested, build_envelope
from dashboard import health, log_queries, services, traces
from dashboard.models import LogEntry
from dashboard.privacy import mask_email, mask_name, masked

pytestmark = pytest.mark.django_db(databases="__all__")


def order_flow(email="jane@example.com", name="Jane"):
    """OrderRequested -> PaymentRequested -> OrderConfirmed, logged with receipts, as the workers would."""
    order_id, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    requested = build_envelope(
        OrderRequested(order_id=order_id, customer=Customer(name=name, email=email),
                       lines=(Line(sku="SKU-1", qty=2),), payment_token="tok_visa"),
        producer="orders", correlation_id=correlation)
    payment = build_envelope(PaymentRequested(order_id=order_id, amount="24.00", currency="EUR", payment_token="tok_visa"),
                             producer="orders", correlation_id=correlation, causation_id=requested.event_id)
    confirmed = build_envelope(OrderConfirmed(order_id=order_id, total="24.00"),
                               producer="orders", correlation_id=correlation, causation_id=payment.event_id)
    for envelope in (requested, payment, confirmed):
        services.log_event(envelope)
        services.log_receipt({
            "event_id": envelope.event_id, "event_type": envelope.event_type, "producer": "orders",
            "correlation_id": correlation, "causation_id": envelope.causation_id, "context": "payments",
            "outcome": "ok", "error": "", "attempt": 1,
            "published_at": "2026-11-27T10:00:00.000000Z", "sent_at": "2026-11-27T10:00:00.010000Z",
            "received_at": "2026-11-27T10:00:00.050000Z", "started_at": "2026-11-27T10:00:00.051000Z",
            "finished_at": "2026-11-27T10:00:00.070000Z",
        })
    return order_id, correlation, (requested, payment, confirmed)


def test_mask_email_keeps_the_first_letter_and_the_domain():
    assert mask_email("jane@example.com") == "j***@example.com"
    assert mask_email("write to bob.smith@mail.example.org now") == "write to b***@mail.example.org now"
    value = {"customer": {"name": "Jane", "email": "jane@example.com"}, "lines": [{"sku": "A", "qty": 1}]}
    assert masked(value) == {"customer": {"name": "J.", "email": "j***@example.com"}, "lines": [{"sku": "A", "qty": 1}]}
    assert value["customer"] == {"name": "Jane", "email": "jane@example.com"}  # the original is untouched


def test_customer_names_are_reduced_to_initials_wherever_a_customer_is_described():
    assert mask_name("Ada  King Lovelace") == "A. K. L."
    value = {"envelope": {"payload": {"customer": {"name": "Ada Lovelace", "email": "ada@example.com"}}},
             "state": {"customer_name": "Grace Hopper"}, "products": [{"name": "Desk lamp"}]}
    assert masked(value) == {"envelope": {"payload": {"customer": {"name": "A. L.", "email": "a***@example.com"}}},
                             "state": {"customer_name": "G. H."}, "products": [{"name": "Desk lamp"}]}


def test_events_are_logged_with_their_order_id():
    order_id, _, (requested, _, _) = order_flow()
    entry = LogEntry.objects.using("dashboard").get(kind="event", event_id=requested.event_id)
    assert entry.order_id == order_id
    assert LogEntry.objects.using("dashboard").filter(order_id=order_id, kind="event").count() == 3


def test_causation_chain_walks_back_to_the_root():
    _, _, (requested, payment, confirmed) = order_flow()
    detail = log_queries.event_detail(confirmed.event_id)
    assert [m["envelope"]["event_id"] for m in detail["chain"]] == [requested.event_id, payment.event_id, confirmed.event_id]
    assert [m["receipt"]["context"] for m in detail["receipts"]] == ["payments"]
    assert any(link["href"].startswith("/admin/orders/order/?q=") for link in detail["links"])
    assert [m["envelope"]["event_id"] for m in log_queries.event_detail(requested.event_id)["caused"]] == [payment.event_id]


def test_trace_has_state_timeline_latency_and_tree():
    order_id, correlation, (requested, payment, confirmed) = order_flow()
    trace = traces.trace(order_id)
    assert trace["correlation_ids"] == [correlation]
    assert trace["state"]["status"] == "CONFIRMED"
    assert trace["state"]["total"] == "24.00"
    assert [item["envelope"]["event_type"] for item in trace["timeline"]] == ["OrderRequested", "PaymentRequested", "OrderConfirmed"]
    latency = trace["timeline"][0]["receipts"][0]["latency"]
    assert latency == {"relay_ms": 10.0, "queue_ms": 40.0, "handle_ms": 20.0, "published_to_received_ms": 50.0, "total_ms": 70.0}
    root = trace["tree"][0]
    assert root["event_id"] == requested.event_id
    assert root["children"][0]["children"][0]["event_id"] == confirmed.event_id
    assert traces.trace(str(uuid.uuid4())) is None


def test_apis_mask_emails_for_anonymous_and_show_them_to_staff(client):
    order_id, correlation, (requested, _, _) = order_flow(email="jane.doe@example.com")
    for url in (f"/api/events/?correlation_id={correlation}", f"/api/events/{requested.event_id}/", f"/api/traces/{order_id}/"):
        body = client.get(url).content.decode()
        assert "jane.doe@example.com" not in body, url
        assert "j***@example.com" in body, url
    staff = get_user_model().objects.create_user(f"staff-{uuid.uuid4().hex[:8]}", password="x" * 12, is_staff=True)
    client.force_login(staff)
    assert "jane.doe@example.com" in client.get(f"/api/traces/{order_id}/").content.decode()
    # Staff may search inside payloads; anonymous text search never matches a hidden email.
    assert client.get("/api/events/", {"q": "jane.doe@", "correlation_id": correlation}).json()["items"]
    client.logout()
    assert not client.get("/api/events/", {"q": "jane.doe@", "correlation_id": correlation}).json()["items"]


def test_log_api_filters_by_producer_kind_and_text(client):
    order_id, correlation, _ = order_flow()
    body = client.get("/api/events/", {"correlation_id": correlation, "kind": "event", "producer": "orders"}).json()
    assert [item["envelope"]["event_type"] for item in body["items"]] == ["OrderRequested", "PaymentRequested", "OrderConfirmed"]
    assert len(client.get("/api/events/", {"q": order_id[:13]}).json()["items"]) == 3
    assert client.get("/api/events/", {"kind": "nope"}).status_code == 400
    assert client.get(f"/api/events/{uuid.uuid4()}/").status_code == 404
    assert client.get(f"/api/traces/{uuid.uuid4()}/").status_code == 404


def test_contexts_api_reports_queue_online_and_views(client):
    body = client.get("/api/contexts/").json()
    names = [c["name"] for c in body["contexts"]]
    assert {"orders", "inventory", "payments", "dashboard"} <= set(names)
    for context in body["contexts"]:
        assert set(context) >= {"name", "queue_depth", "online", "view"}
        # The workers' own word decides when they answered; otherwise the receipts and queue tell.
        if context["consumer"] in ("online", "paused", "offline"):
            assert context["online"] is (context["consumer"] == "online"), context
        else:
            assert context["consumer"] == "unknown" and context["online"] is None, context
    assert {"nodes", "routes"} <= set(body["topology"])


def test_pages_and_their_static_files_are_served(client):
    order_id, _, _ = order_flow()
    for url in ("/", "/events/", f"/orders/{order_id}/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert b'type="module"' in response.content
    # events-page.js links orders to their trace through the URL the template reversed
    assert b'data-order-trace-url="/orders/00000000-0000-0000-0000-000000000000/"' in client.get("/events/").content
    script = client.get("/static/js/stream.js")
    assert script.status_code == 200 and b"export class EventStream" in b"".join(script.streaming_content)
    css = client.get("/static/css/eventflow.css")
    assert css.status_code == 200 and css["Content-Type"].startswith("text/css")


def test_consumer_online_state():
    now = 1000.0
    assert health.consumer_online("t-a", 0, now - 1, now) is True
    assert health.consumer_online("t-a", 0, None, now) is None
    assert health.consumer_online("t-b", 3, None, now) is None  # just started waiting
    assert health.consumer_online("t-b", 3, None, now + health.OFFLINE_AFTER) is False
    assert health.consumer_online("t-b", 3, now + 3, now + 3.5) is True


def test_admin_shows_the_log_read_only(client):
    admin = get_user_model().objects.create_superuser(f"admin-{uuid.uuid4().hex[:8]}", password="x" * 12)
    client.force_login(admin)
    _, correlation, (requested, _, _) = order_flow()
    entry = LogEntry.objects.using("dashboard").get(kind="event", event_id=requested.event_id)
    listing = client.get("/admin/dashboard/logentry/", {"q": correlation})
    assert listing.status_code == 200 and f"/admin/dashboard/logentry/{entry.seq}/change/".encode() in listing.content
    page = client.get(f"/admin/dashboard/logentry/{entry.seq}/change/")
    assert page.status_code == 200 and b"OrderRequested" in page.content
    assert client.get("/admin/dashboard/logentry/add/").status_code == 403
    assert client.get("/admin/dashboard/contextview/").status_code == 200


def test_a_rejected_order_shows_its_reason():
    from contracts import OrderRejected

    order_id, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    for event in (
        OrderRequested(order_id=order_id, customer=Customer(name="Bo", email="bo@example.com"),
                       lines=(Line(sku="SKU-2", qty=1),), payment_token="tok_declined"),
        OrderRejected(order_id=order_id, reason="payment declined: card declined"),
    ):
        services.log_event(build_envelope(event, producer="orders", correlation_id=correlation))
    state = traces.trace(order_id)["state"]
    assert state["status"] == "REJECTED"
    assert state["reason"] == "payment declined: card declined"


def test_an_order_is_pending_until_it_is_decided():
    order_id = str(uuid.uuid4())
    services.log_event(build_envelope(
        OrderRequested(order_id=order_id, customer=Customer(name="Cy", email="cy@example.com"),
                       lines=(Line(sku="SKU-3", qty=1),), payment_token="tok_visa"), producer="orders"))
    assert traces.trace(order_id)["state"]["status"] == "PENDING"


def test_a_context_make_run_is_restarting_is_offline_until_its_worker_is_ready(settings, tmp_path):
    from devstack import status

    settings.DATA_DIR = tmp_path
    (tmp_path / ".run").mkdir()
    workers = {"orders": "online", "inventory": "online"}
    assert health.with_restarts(workers) == workers
    status.write_down(tmp_path, {"inventory": "starting", "redis": "starting"})
    assert health.with_restarts(workers) == {"orders": "online", "inventory": "offline"}
    status.clear(tmp_path)
    assert health.with_restarts(workers) == workers


def test_with_two_workers_a_context_is_offline_only_while_both_restart(settings, tmp_path):
    from devstack import status

    settings.DATA_DIR, settings.EVENTFLOW_WORKERS = tmp_path, 2
    (tmp_path / ".run").mkdir()
    workers = {"orders": "online", "inventory": "online"}
    status.write_down(tmp_path, {"inventory-1": "starting"})
    assert health.with_restarts(workers) == workers  # inventory-2 still consumes
    status.write_down(tmp_path, {"inventory-1": "starting", "inventory-2": "restarting"})
    assert health.with_restarts(workers) == {"orders": "online", "inventory": "offline"}
