"""A whole flow delivered twice, and a whole flow delivered in reversed order, on the
real workers: the final state is the one a normal delivery gives; the audit is clean."""

from __future__ import annotations

import json
import uuid

import pytest

from eventbus import transport
from eventbus.models import OutboxMessage
from inventory.models import Product, Reservation
from orders.models import Order
from orders.services import order_place
from payments.models import Payment
from tests.support.audit import EXPECTED_SUBSCRIBERS, audit_since, outbox_mark
from tests.support.bus import receipt_outcomes
from tests.support.flow import seed_products, views_equal
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]
BUSINESS = ("orders", "inventory", "payments")


def flow_envelopes(correlation_id: str) -> list[dict]:
    rows = [row for context in BUSINESS
            for row in OutboxMessage.objects.using(context).filter(correlation_id=correlation_id)]
    return [row.envelope for row in sorted(rows, key=lambda r: r.envelope["occurred_at"])]


def final_state(order_id: str, sku: str) -> dict | None:
    order = Order.objects.using("orders").filter(order_id=order_id).first()
    reservation = Reservation.objects.using("inventory").filter(order_id=order_id).first()
    payment = Payment.objects.using("payments").filter(order_id=order_id).first()
    if order is None or reservation is None or payment is None:
        return None
    product = Product.objects.using("inventory").get(sku=sku)
    return {"status": order.status, "total": order.total, "reservation": reservation.status,
            "payment": (payment.status, payment.amount), "stock": (product.on_hand, product.reserved, product.version)}


def settled_state(order_id: str, sku: str) -> dict | None:
    state = final_state(order_id, sku)
    if state and state["status"] == "CONFIRMED" and state["reservation"] == "COMMITTED" and state["payment"][0] == "CAPTURED":
        return state
    return None


def deliver(envelopes: list[dict]) -> int:
    sent = 0
    for envelope in envelopes:
        for subscriber in sorted(EXPECTED_SUBSCRIBERS[envelope["event_type"]]):
            if subscriber in BUSINESS:
                transport.send_delivery(subscriber, envelope, sent_at="2026-01-01T00:00:00Z")
                sent += 1
    return sent


def place_and_settle(sku: str) -> tuple[str, str]:
    placed = order_place(customer_name="Ada", customer_email="ada@example.com",
                         lines=[{"sku": sku, "qty": 2}], payment_token="tok_visa")
    wait_for(lambda: settled_state(placed.order_id, sku), message="the flow to settle")
    return placed.order_id, placed.correlation_id


def test_every_message_of_a_flow_delivered_twice(stack, live_db):
    sku = seed_products({"A": ("7.00", 20)})["A"]
    mark = outbox_mark()
    order_id, correlation_id = place_and_settle(sku)
    stack.wait_idle(timeout=60)
    before = final_state(order_id, sku)
    envelopes = flow_envelopes(correlation_id)
    assert {"OrderRequested", "PaymentRequested", "StockReserved", "PaymentAuthorized", "OrderConfirmed",
            "PaymentCaptured", "InventoryChanged"} <= {e["event_type"] for e in envelopes}
    assert deliver(envelopes) >= 9
    stack.wait_idle(timeout=90)
    assert final_state(order_id, sku) == before
    for envelope in envelopes:  # each second delivery was recognised by the inbox
        for subscriber in sorted(EXPECTED_SUBSCRIBERS[envelope["event_type"]]):
            if subscriber in BUSINESS:
                wait_for(lambda: receipt_outcomes(envelope["event_id"], subscriber).count("duplicate") == 1,
                         message=f"a duplicate receipt of {envelope['event_type']} from {subscriber}")
    audit_since(mark, orders=[order_id]).assert_clean()


def rewritten(envelopes: list[dict], *, replace: dict[str, str]) -> list[dict]:
    """The same flow for a new order on another product (`replace`: its SKU and name): new ids, same facts."""
    ids = {e["event_id"]: str(uuid.uuid4()) for e in envelopes}
    correlation, order_id = str(uuid.uuid4()), str(uuid.uuid4())
    old_order = envelopes[0]["payload"]["order_id"]
    result = []
    for envelope in envelopes:
        text = json.dumps(envelope).replace(old_order, order_id)
        for old, new in replace.items():
            text = text.replace(old, new)
        copy = json.loads(text)
        copy["event_id"] = ids[envelope["event_id"]]
        copy["correlation_id"] = correlation
        copy["causation_id"] = ids.get(envelope["causation_id"], envelope["causation_id"])
        result.append(copy)
    return result


def test_a_flow_delivered_in_reversed_order_ends_in_the_same_state(stack, live_db):
    skus = seed_products({"A": ("7.00", 20), "B": ("7.00", 20)})
    mark = outbox_mark()
    order_id, correlation_id = place_and_settle(skus["A"])
    stack.wait_idle(timeout=60)
    expected = final_state(order_id, skus["A"])
    replay = rewritten(flow_envelopes(correlation_id),
                       replace={skus["A"]: skus["B"], '"Product A"': '"Product B"'})
    assert replay[-1]["event_type"] in ("PaymentCaptured", "InventoryChanged", "StockReleased")
    new_order = replay[0]["payload"]["order_id"]
    deliver(list(reversed(replay)))  # OrderConfirmed reaches inventory and payments before OrderRequested
    state = wait_for(lambda: settled_state(new_order, skus["B"]), timeout=60, message="the reversed flow to settle")
    stack.wait_idle(timeout=60)
    assert final_state(new_order, skus["B"]) == expected == state
    wait_for(lambda: views_equal(set(skus.values())), message="orders' view equal to inventory's stock")
    audit_since(mark, orders=[order_id, new_order], placed_orders=[order_id]).assert_clean()


def test_inventory_changes_delivered_newest_first_leave_orders_view_at_the_newest(stack, live_db):
    """Orders sees one product's InventoryChanged history again, newest first (as fresh
    deliveries): its version check keeps the newest state, the view still equals the stock."""
    from inventory.services import stock_adjust

    sku = seed_products({"A": ("4.00", 10)})["A"]
    for delta in (5, -3, 7):
        stock_adjust(sku=sku, delta=delta, reason="history for the replay")
    wait_for(lambda: views_equal({sku}), message="orders' view at the newest version")
    history = [row.envelope for row in OutboxMessage.objects.using("inventory")
               .filter(event_type="InventoryChanged").order_by("id") if row.envelope["payload"]["sku"] == sku]
    assert [e["payload"]["version"] for e in history] == [1, 2, 3, 4]
    replay = [{**envelope, "event_id": str(uuid.uuid4())} for envelope in reversed(history)]
    for envelope in replay:
        transport.send_delivery("orders", envelope, sent_at="2026-01-01T00:00:00Z")
    for envelope in replay:
        wait_for(lambda: receipt_outcomes(envelope["event_id"], "orders") == ["ok"],
                 message=f"orders to take version {envelope['payload']['version']} again")
    assert views_equal({sku})
