"""Decoupling on the real stack: a context detached and attached while the system runs
(eventbus/subscriptions.py) loses nothing, applies nothing twice, and no producer notices."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from eventbus import broker, control, registry, subscriptions
from eventbus.models import OutboxMessage, Subscription
from orders.models import Order
from orders.services import order_place
from shipping.models import Shipment
from tests.integration.test_control_api import csrf_client, csrf_token, user
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


def test_no_other_context_names_shipping():
    """Grep-level: shipping is invisible to every other context's code and to the bus."""
    offenders = [str(path.relative_to(ROOT)) for package in ("orders", "inventory", "payments", "dashboard", "eventbus")
                 for path in (ROOT / package).rglob("*.py") if "shipping" in path.read_text().lower()]
    assert offenders == []


def test_shipping_attached_to_a_running_system_ships_each_confirmed_order_once(stack, live_db):
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

    result = control.attach("shipping")
    assert result["attached"] and result["replayed"] > 0
    wait_for(lambda: caught_up("shipping"), timeout=180, message="shipping to catch up (lag 0)")
    shipped = dict(Shipment.objects.using("shipping").filter(order_id__in=placed).values_list("order_id", "status"))
    assert sorted(o for o, s in shipped.items() if s == Shipment.SCHEDULED) == confirmed
    assert len(shipped) == 50  # the rejected ones are noted as not shipped
    scheduled = Counter(row.envelope["payload"]["order_id"] for row in OutboxMessage.objects.using("shipping")
                        .filter(event_type="ShipmentScheduled") if row.envelope["payload"]["order_id"] in placed)
    assert sorted(scheduled) == confirmed and set(scheduled.values()) == {1}
    stack.wait_idle(timeout=120)
    audit_since(mark, orders=placed).assert_clean()


def test_detaching_and_attaching_a_business_context_loses_nothing_and_applies_nothing_twice(stack, live_db):
    sku = seed_products({"A": ("3.00", 200)}, prefix="DET")["A"]
    mark = outbox_mark()
    control.detach("inventory")
    routes_settled()
    placed = place_orders(10, sku=sku)
    time.sleep(2)  # what inventory would have done by now, it has not: nothing is routed to it
    assert decided(placed) is None
    assert subscriptions.state("inventory")["lag"] >= 10
    control.attach("inventory")
    wait_for(lambda: decided(placed), timeout=180, message="the orders to be decided once inventory caught up")
    wait_for(lambda: caught_up("inventory"), timeout=120, message="inventory to catch up")
    stack.wait_idle(timeout=120)
    audit_since(mark, orders=placed).assert_clean()


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

    from eventbus import rebuild
    from orders.models import ProductView

    # Earlier tests of the session write view rows straight to the database, which no event
    # explains: start from the view the log gives, then let a simulate run change it live.
    for context in ("orders", "shipping"):
        call_command("rebuild_view", context, force=True, stdout=io.StringIO())
    prefix = f"RB{uuid.uuid4().hex[:8]}"
    call_command("seed_demo", sku_prefix=prefix, stdout=io.StringIO())
    call_command("simulate", orders=30, rate=0, wait=180, sku_prefix=f"{prefix}-", seed=5, stdout=io.StringIO())
    stack.wait_idle(timeout=180)
    for context in ("orders", "shipping"):
        before = rebuild.snapshot(context)
        assert sum(len(rows) for rows in before.values()) > 0
        out = io.StringIO()
        call_command("rebuild_view", context, stdout=out)
        assert "replayed" in out.getvalue() and "equal to the view it replaced" in out.getvalue(), out.getvalue()
        assert rebuild.snapshot(context) == before  # row by row
    # A row no retained event explains: the rebuild would drop it, so it is refused and nothing changes.
    ProductView.objects.using("orders").create(sku=f"{prefix}-STRAY", name="stray", price="1.00", version=1)
    with pytest.raises(CommandError, match="differs"):
        call_command("rebuild_view", "orders", stdout=io.StringIO())
    assert ProductView.objects.using("orders").filter(sku=f"{prefix}-STRAY").exists()
    ProductView.objects.using("orders").filter(sku=f"{prefix}-STRAY").delete()
    with pytest.raises(CommandError, match="no local view"):
        call_command("rebuild_view", "payments", stdout=io.StringIO())
