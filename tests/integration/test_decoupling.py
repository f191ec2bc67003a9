"""Decoupling on the real stack: a context detached and attached while the system runs
(eventbus/subscriptions.py) loses nothing, applies nothing twice, and no producer notices."""

from __future__ import annotations

import io
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from eventbus import broker, control, registry, subscriptions
from eventbus.models import OutboxMessage, Subscription
from inventory.models import Reservation
from orders.models import Order
from orders.services import order_place
from payments.models import Payment
from shipping.models import Shipment
from tests.integration.test_control_api import csrf_client, csrf_token, user
from tests.integration.test_metrics_live import scrape
from tests.support.audit import audit_since, outbox_mark
from tests.support.flow import seed_products
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def everything_attached_after(live_db):
    """A failed test must not leave a context detached for the tests that follow."""
    yield
    for context in registry.contexts():
        if not subscriptions.state(context)["attached"]:
            Subscription.objects.using(context).filter(context=context).update(detached_at=timezone.now())
            control.attach(context)


def routes_settled() -> None:
    """Every process reads the subscriptions at most ROUTES_TTL old: let them all see the change."""
    time.sleep(subscriptions.ROUTES_TTL * 1.5)


def place_orders(n: int, *, sku: str) -> list[str]:
    """n orders of one unit each; every fifth one's card is declined."""
    return [str(order_place(customer_name="Ada", customer_email="ada@example.com", lines=[{"sku": sku, "qty": 1}],
                            payment_token="tok_declined" if i % 5 == 4 else "tok_visa").order_id) for i in range(n)]


def decided(order_ids) -> dict[str, str] | None:
    statuses = {str(o): s for o, s in Order.objects.using("orders").filter(order_id__in=order_ids).values_list("order_id", "status")}
    return statuses if len(statuses) == len(order_ids) and Order.PENDING not in statuses.values() else None


def caught_up(context: str) -> dict | None:
    state = subscriptions.state(context)
    return state if state["attached"] and not state["replaying"] and state["lag"] == 0 else None


def scraped_lag(daphne_url: str, context: str) -> float:
    """eventflow_replay_lag{context} as one scrape of Daphne's /metrics reports it (present, not defaulted)."""
    return scrape(daphne_url)[1][("eventflow_replay_lag", (("context", context),))]


def test_no_other_context_names_shipping():
    """Grep-level: shipping is invisible to every other context's code and to the bus."""
    offenders = [str(path.relative_to(ROOT)) for package in ("orders", "inventory", "payments", "dashboard", "eventbus")
                 for path in (ROOT / package).rglob("*.py") if "shipping" in path.read_text().lower()]
    assert offenders == []


def test_shipping_attached_to_a_running_system_ships_each_confirmed_order_once(stack, live_db, daphne_url):
    control.detach("shipping")
    # As a context added to a system that has been running: never attached, so its first
    # attach replays the whole retained log.
    Subscription.objects.using("shipping").filter(context="shipping").update(detached_at=None)
    routes_settled()
    sku = seed_products({"A": ("4.00", 500)}, prefix="SHIP")["A"]
    mark = outbox_mark()
    placed = place_orders(50, sku=sku)
    statuses = wait_for(lambda: decided(placed), timeout=180, message="the 50 orders to be decided with shipping detached")
    confirmed = sorted(o for o, s in statuses.items() if s == Order.CONFIRMED)
    assert len(confirmed) == 40
    assert not Shipment.objects.using("shipping").filter(order_id__in=placed).exists()
    assert broker.queue_depths(["shipping"])["shipping"] == 0  # nothing waits for it: detached, not paused
    assert subscriptions.state("shipping")["lag"] > 0
    assert scraped_lag(daphne_url, "shipping") >= len(placed)  # an OrderConfirmed/OrderRejected per order, at least

    result = control.attach("shipping")
    assert result["attached"] and result["replayed"] > 0
    wait_for(lambda: caught_up("shipping"), timeout=180, message="shipping to catch up (lag 0)")
    assert scraped_lag(daphne_url, "shipping") == 0
    shipped = dict(Shipment.objects.using("shipping").filter(order_id__in=placed).values_list("order_id", "status"))
    assert sorted(o for o, s in shipped.items() if s == Shipment.SCHEDULED) == confirmed
    assert len(shipped) == 50  # the rejected ones are noted as not shipped
    scheduled = Counter(row.envelope["payload"]["order_id"] for row in OutboxMessage.objects.using("shipping")
                        .filter(event_type="ShipmentScheduled") if row.envelope["payload"]["order_id"] in placed)
    assert sorted(scheduled) == confirmed and set(scheduled.values()) == {1}
    stack.wait_idle(timeout=120)
    audit_since(mark, orders=placed).assert_clean()


@pytest.mark.parametrize("context", ["inventory", "payments"])
def test_detaching_and_attaching_a_business_context_loses_nothing_and_applies_nothing_twice(stack, live_db, context):
    sku = seed_products({"A": ("3.00", 200)}, prefix="DET")["A"]
    mark = outbox_mark()
    control.detach(context)
    routes_settled()
    placed = place_orders(10, sku=sku)
    wait_for(lambda: subscriptions.state(context)["lag"] >= 10, timeout=60,
             message=f"{context} to be 10 events behind (one request per order)")
    if context == "payments":
        # The rest of the flow goes on (inventory holds the stock of each order), but no order
        # is charged, so none is decided: they wait for payments.
        wait_for(lambda: Reservation.objects.using("inventory").filter(
            order_id__in=placed, status=Reservation.HELD).count() == len(placed),
            timeout=60, message="inventory to hold the stock of each order while payments is detached")
        time.sleep(2)  # what payments would have done by now, it has not: nothing is routed to it
        assert not Payment.objects.using("payments").filter(order_id__in=placed).exists()
    else:
        time.sleep(2)  # what inventory would have done by now, it has not: nothing is routed to it
        assert not Reservation.objects.using("inventory").filter(order_id__in=placed).exists()
    statuses = Counter(Order.objects.using("orders").filter(order_id__in=placed).values_list("status", flat=True))
    # Nothing is confirmed without it. With inventory detached, payments may reject the two
    # declined cards already; with payments detached, every order waits.
    if context == "payments":
        assert statuses == {Order.PENDING: 10}, f"held up by payments: {statuses}"
    else:
        assert statuses[Order.PENDING] >= 8 and Order.CONFIRMED not in statuses, f"held up by inventory: {statuses}"
    control.attach(context)
    wait_for(lambda: decided(placed), timeout=180, message=f"the orders to be decided once {context} caught up")
    wait_for(lambda: caught_up(context), timeout=120, message=f"{context} to catch up")
    assert Counter(decided(placed).values()) == {Order.CONFIRMED: 8, Order.REJECTED: 2}  # every fifth card declined
    stack.wait_idle(timeout=120)
    audit = audit_since(mark, orders=placed)
    audit.assert_clean()
    assert audit.lost_count == 0 and audit.applied_twice == []


def test_detach_and_attach_commands_and_the_replay_window(stack, live_db):
    out = io.StringIO()
    call_command("detach", "shipping", stdout=out)
    assert "shipping: detached" in out.getvalue(), out.getvalue()
    assert not subscriptions.state("shipping")["attached"]
    with pytest.raises(CommandError, match="unknown context 'nowhere'"):
        call_command("detach", "nowhere", stdout=io.StringIO())
    # Detached longer than the outboxes and inboxes keep events: refused, saying what is missing.
    long_ago = timezone.now() - timedelta(seconds=subscriptions.window() + 60)
    Subscription.objects.using("shipping").filter(context="shipping").update(detached_at=long_ago)
    with pytest.raises(CommandError, match="replay window") as refused:
        call_command("attach", "shipping", stdout=io.StringIO())
    assert "shipping" in str(refused.value) and "OrderConfirmed" in str(refused.value)
    assert not subscriptions.state("shipping")["attached"]

    Subscription.objects.using("shipping").filter(context="shipping").update(detached_at=timezone.now())
    routes_settled()
    sku = seed_products({"A": ("2.00", 50)}, prefix="CMD")["A"]
    placed = place_orders(5, sku=sku)
    wait_for(lambda: decided(placed), timeout=120, message="the orders to be decided with shipping detached")
    assert not Shipment.objects.using("shipping").filter(order_id__in=placed).exists()
    out = io.StringIO()
    call_command("attach", "shipping", wait=60, stdout=out)
    assert "shipping: attached" in out.getvalue(), out.getvalue()
    wait_for(lambda: caught_up("shipping"), timeout=120, message="shipping to catch up")
    wait_for(lambda: Shipment.objects.using("shipping").filter(order_id__in=placed).count() == len(placed),
             timeout=60, message="shipping to note the orders it missed while detached")


def test_detach_and_attach_over_http_staff_csrf_state_and_the_replay_window(stack, live_db):
    for account in (None, user("decoupling-viewer", staff=False)):
        client = csrf_client(account)
        assert client.post("/api/contexts/shipping/detach", HTTP_X_CSRFTOKEN=csrf_token(client)).status_code == 403
    staff = csrf_client(user("decoupling-operator", staff=True))
    assert staff.post("/api/contexts/shipping/detach").status_code == 403  # no CSRF token
    assert subscriptions.state("shipping")["attached"]
    token = csrf_token(staff)
    assert staff.post("/api/contexts/nowhere/detach", HTTP_X_CSRFTOKEN=token).status_code == 404

    response = staff.post("/api/contexts/shipping/detach", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200, response.content
    assert response.json()["attached"] is False
    wait_for(lambda: {c["name"]: c for c in staff.get("/api/contexts/").json()["contexts"]}["shipping"]["attached"] is False,
             message="/api/contexts/ to report shipping detached")
    # Detached longer than the outboxes and inboxes keep events: refused, saying what is missing.
    long_ago = timezone.now() - timedelta(seconds=subscriptions.window() + 60)
    Subscription.objects.using("shipping").filter(context="shipping").update(detached_at=long_ago)
    response = staff.post("/api/contexts/shipping/attach", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 409
    message = response.json()["errors"]["context"][0]
    assert "replay window" in message and "OrderConfirmed" in message
    assert not subscriptions.state("shipping")["attached"]

    Subscription.objects.using("shipping").filter(context="shipping").update(detached_at=timezone.now())
    response = staff.post("/api/contexts/shipping/attach", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["attached"] is True and {"replaying", "lag", "replayed"} <= set(body)
    wait_for(lambda: caught_up("shipping"), timeout=60, message="shipping to catch up")
    shipping = {c["name"]: c for c in staff.get("/api/contexts/").json()["contexts"]}
    assert {"attached", "replaying", "lag"} <= set(shipping["shipping"])


def test_rebuild_view_after_a_simulate_run_equals_the_view_it_replaces(stack, live_db):
    import io
    import uuid

    from django.core.management import CommandError, call_command

    from dashboard.models import ContextView
    from eventbus import rebuild
    from orders.models import ProductView

    # Earlier tests of the session write view rows straight to the database, which no event
    # explains: start from the view the log gives, then let a simulate run change it live.
    for context in ("orders", "shipping", "dashboard"):
        call_command("rebuild_view", context, force=True, stdout=io.StringIO())
    prefix = f"RB{uuid.uuid4().hex[:8]}"
    call_command("seed_demo", sku_prefix=prefix, stdout=io.StringIO())
    call_command("simulate", orders=30, rate=0, wait=180, sku_prefix=f"{prefix}-", seed=5, stdout=io.StringIO())
    stack.wait_idle(timeout=180)
    for context in ("orders", "shipping", "dashboard"):
        before = rebuild.snapshot(context)
        assert sum(len(rows) for rows in before.values()) > 0
        out = io.StringIO()
        call_command("rebuild_view", context, stdout=out)
        assert "replayed" in out.getvalue() and "equal to the view it replaced" in out.getvalue(), out.getvalue()
        assert rebuild.snapshot(context) == before  # row by row
    # The dashboard's view cache holds every context's view, its seq too, as the receipts left it.
    cache = {row.context: row for row in ContextView.objects.using("dashboard").all()}
    assert {"orders", "inventory", "payments"} <= set(cache) and "swapped in" in out.getvalue()
    # A cached view no history explains is refused the same way; --force drops it.
    ContextView.objects.using("dashboard").create(context=f"{prefix}-stray", view={"x": {}}, seq=1)
    with pytest.raises(CommandError, match="differs"):
        call_command("rebuild_view", "dashboard", stdout=io.StringIO())
    assert ContextView.objects.using("dashboard").filter(context=f"{prefix}-stray").exists()
    call_command("rebuild_view", "dashboard", force=True, stdout=io.StringIO())
    assert not ContextView.objects.using("dashboard").filter(context=f"{prefix}-stray").exists()
    assert {row.context: (row.view, row.seq) for row in ContextView.objects.using("dashboard").all()} == \
        {name: (row.view, row.seq) for name, row in cache.items()}
    # A row no retained event explains: the rebuild would drop it, so it is refused and nothing changes.
    ProductView.objects.using("orders").create(sku=f"{prefix}-STRAY", name="stray", price="1.00", version=1)
    with pytest.raises(CommandError, match="differs"):
        call_command("rebuild_view", "orders", stdout=io.StringIO())
    assert ProductView.objects.using("orders").filter(sku=f"{prefix}-STRAY").exists()
    ProductView.objects.using("orders").filter(sku=f"{prefix}-STRAY").delete()
    with pytest.raises(CommandError, match="no local view"):
        call_command("rebuild_view", "payments", stdout=io.StringIO())
