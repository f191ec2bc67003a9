"""The dashboard's batch ingest (eventbus/ingest.py) and the coalesced receipts (eventbus/receipts.py)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from contracts import Customer, Line, OrderRequested, build_envelope
from dashboard import services
from dashboard.models import ContextView, LogEntry
from eventbus import ingest
from eventbus.models import InboxMessage
from eventbus.receipts import ReceiptBuffer, view_changes, view_rows

pytestmark = pytest.mark.django_db(databases="__all__", transaction=True)


def envelope():
    return build_envelope(
        OrderRequested(order_id=str(uuid.uuid4()), customer=Customer(name="Jo", email="jo@example.com"),
                       lines=(Line(sku="SKU-B", qty=1),), payment_token="tok_visa"),
        producer="orders").as_dict()


def receipt_of(env, context="payments"):
    return {"event_id": env["event_id"], "event_type": env["event_type"], "producer": "orders",
            "correlation_id": env["correlation_id"], "causation_id": None, "context": context,
            "outcome": "ok", "error": "", "attempt": 1, "published_at": env["occurred_at"],
            "sent_at": None, "received_at": "2026-11-27T10:00:00.050000Z",
            "started_at": "2026-11-27T10:00:00.051000Z", "finished_at": "2026-11-27T10:00:00.070000Z"}


def batch(envs):
    return [ingest.Delivery(env, sent_at=None, received_at="2026-11-27T10:00:00.000000Z", attempt=1) for env in envs] + [
        ingest.Receipts([receipt_of(env) for env in envs], {"orders": {"orders_by_status": {"PENDING": 2}}})]


def test_a_batch_is_one_ordered_append_and_its_redelivery_a_no_op():
    envs = [envelope(), envelope()]
    first = ingest.write_batch("dashboard", batch(envs))
    assert [r["outcome"] for r in first[:2]] == ["ok", "ok"] and first[2] is None
    ids = [e["event_id"] for e in envs]
    rows = list(LogEntry.objects.using("dashboard").filter(event_id__in=ids).order_by("seq"))
    # Events in arrival order, then payments' receipts: seq follows it. The dashboard's own
    # receipt of each event is that event's row.
    assert [(r.kind, r.context) for r in rows] == [
        ("event", "orders"), ("event", "orders"), ("receipt", "payments"), ("receipt", "payments")]
    assert rows[2].as_message()["receipt"] == receipt_of(envs[0])  # whole again, though stored without its columns
    own = rows[0].own_receipt()
    assert (own["context"], own["outcome"], own["event_id"], own["received_at"]) == (
        "dashboard", "ok", ids[0], "2026-11-27T10:00:00.000000Z")
    from dashboard import log_queries

    assert [m["receipt"]["context"] for m in log_queries.event_detail(ids[0])["receipts"]] == ["dashboard", "payments"]
    assert InboxMessage.objects.using("dashboard").filter(event_id__in=ids).count() == 2

    again = ingest.write_batch("dashboard", batch(envs))
    assert [r["outcome"] for r in again[:2]] == ["duplicate", "duplicate"]
    # Only the duplicate receipts of the dashboard itself are new (an outcome of their own).
    after = LogEntry.objects.using("dashboard").filter(event_id__in=ids)
    assert after.filter(kind="event").count() == 2
    assert after.filter(kind="receipt", context="payments").count() == 2
    assert list(after.filter(kind="receipt", context="dashboard").values_list("outcome", flat=True).order_by("seq")) == [
        "duplicate", "duplicate"]


def test_an_invalid_envelope_is_dead_lettered_and_the_rest_of_its_batch_is_logged():
    good = envelope()
    results = ingest.write_batch("dashboard", [
        ingest.Delivery({"event_id": "nope"}, sent_at=None, received_at="2026-11-27T10:00:00Z", attempt=1),
        ingest.Delivery(good, sent_at=None, received_at="2026-11-27T10:00:00Z", attempt=1)])
    assert [r["outcome"] for r in results] == ["dead", "ok"]
    assert LogEntry.objects.using("dashboard").filter(kind="event", event_id=good["event_id"]).exists()


def test_the_batcher_writes_what_waits_together_and_answers_each_task():
    envs = [envelope() for _ in range(20)]
    batcher = ingest.Batcher("dashboard")
    results = {}

    def task(env):
        results[env["event_id"]] = batcher.submit(
            ingest.Delivery(env, sent_at=None, received_at="2026-11-27T10:00:00Z", attempt=1))["outcome"]

    threads = [threading.Thread(target=task, args=(env,)) for env in envs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {env["event_id"]: "ok" for env in envs}
    assert LogEntry.objects.using("dashboard").filter(kind="event", event_id__in=list(results)).count() == 20


def test_view_rows_merge_by_key_and_a_lower_version_never_wins():
    services.views_merge({"inventory": {"stock": {"A": {"available": 5, "version": 3}, "B": {"available": 1, "version": 1}}}})
    services.views_merge({"inventory": {"stock": {"A": {"available": 9, "version": 2}, "C": {"available": 2, "version": 1}}}})
    view = ContextView.objects.using("dashboard").get(context="inventory").view
    assert view["stock"] == {"A": {"available": 5, "version": 3}, "B": {"available": 1, "version": 1},
                             "C": {"available": 2, "version": 1}}


def test_view_changes_are_the_rows_that_differ():
    before = view_rows({"stock": {"A": {"v": 1}, "B": {"v": 1}}, "total": 3})
    after = view_rows({"stock": {"A": {"v": 1}, "B": {"v": 2}}, "total": 4})
    assert view_changes(before, after) == {"stock": {"B": {"v": 2}}, "total": {"": 4}}
    assert view_changes(after, after) == {}


def test_receipts_made_while_the_sender_waits_leave_as_one_message():
    sent = []
    buffer = ReceiptBuffer(lambda receipts, views: sent.append([r["n"] for r in receipts]))
    with buffer.cond:  # the sender cannot take any until we let go: they pile up
        for i in range(5):
            buffer.add({"n": i})
    deadline = time.monotonic() + 10
    while not sent and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sent == [[0, 1, 2, 3, 4]]
