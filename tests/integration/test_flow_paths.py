"""The order flow end to end on the real Redis and real workers: each path, redelivery."""

from __future__ import annotations

from decimal import Decimal

import pytest

from eventbus import registry, transport
from eventbus.models import InboxMessage, OutboxMessage
from inventory.models import Product, Reservation
from inventory.services import stock_adjust
from orders.models import Order, ProductView
from orders.services import order_place
from payments.models import Payment
from tests.support.flow import seed_products
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]
CONTEXTS = ("orders", "inventory", "payments")


def seed(spec: dict[str, tuple[str, int]]) -> dict[str, str]:
    return seed_products(spec, prefix="IT")


def place(lines: dict[str, int], token: str) -> str:
    placed = order_place(customer_name="Ada", customer_email="ada@example.com",
                         lines=[{"sku": s, "qty": q} for s, q in lines.items()], payment_token=token)
    return placed.order_id


def settled(order_id: str) -> dict | None:
    """The order's state across contexts once it is decided and compensated, else None."""
    order = Order.objects.using("orders").filter(order_id=order_id).first()
    if order is None or order.status == Order.PENDING:
        return None
    reservation = Reservation.objects.using("inventory").filter(order_id=order_id).first()
    payment = Payment.objects.using("payments").filter(order_id=order_id).first()
    if order.status == Order.CONFIRMED:
        if reservation is None or reservation.status != Reservation.COMMITTED or payment is None or payment.status != Payment.CAPTURED:
            return None
    elif (reservation is None or reservation.status == Reservation.HELD
          or (payment is not None and payment.status == Payment.AUTHORIZED)):
        return None
    return {"status": order.status, "reason": order.reason, "total": order.total,
            "reservation": reservation.status, "payment": payment.status if payment else None,
            "amount": payment.amount if payment else None}


def stock(skus) -> dict:
    return {p.sku: (p.on_hand, p.reserved, p.version) for p in Product.objects.using("inventory").filter(sku__in=skus)}


def view(skus) -> dict:
    return {v.sku: (v.on_hand, v.reserved, v.version) for v in ProductView.objects.using("orders").filter(sku__in=skus)}


def wait_views_equal(skus) -> None:
    wait_for(lambda: view(skus) == stock(skus), message="orders' view to equal inventory's stock")


def test_an_order_with_stock_and_payment_is_confirmed(stack, live_db):
    skus = seed({"A": ("12.00", 5), "B": ("2.50", 10)})
    order_id = place({skus["A"]: 2, skus["B"]: 4}, "tok_visa")
    state = wait_for(lambda: settled(order_id), message="the order to be confirmed, committed and captured")
    assert state == {"status": "CONFIRMED", "reason": "", "total": Decimal("34.00"), "reservation": "COMMITTED",
                     "payment": "CAPTURED", "amount": Decimal("34.00")}
    assert stock(skus.values()) == {skus["A"]: (3, 0, 3), skus["B"]: (6, 0, 3)}
    wait_views_equal(skus.values())


def test_a_declined_payment_releases_the_stock(stack, live_db):
    skus = seed({"A": ("12.00", 5)})
    order_id = place({skus["A"]: 2}, "tok_declined")
    state = wait_for(lambda: settled(order_id), message="the order to be rejected and its stock released")
    assert (state["status"], state["reason"], state["reservation"], state["payment"]) == (
        "REJECTED", "payment declined: card declined", "RELEASED", "DECLINED")
    assert stock(skus.values()) == {skus["A"]: (5, 0, 3)}
    wait_views_equal(skus.values())


def test_a_shortage_seen_by_orders_never_requests_payment(stack, live_db):
    skus = seed({"A": ("9.00", 2)})
    order_id = place({skus["A"]: 3}, "tok_visa")
    state = wait_for(lambda: settled(order_id), message="the order to be rejected")
    assert state["status"] == "REJECTED"
    assert state["reason"] == f"out of stock (local view): {skus['A']} (requested 3, available 2)"
    assert (state["reservation"], state["payment"]) == ("FAILED", None)
    assert not OutboxMessage.objects.using("orders").filter(event_type="PaymentRequested",
                                                            envelope__payload__order_id=order_id).exists()


def test_a_stale_view_lets_an_order_through_that_inventory_refuses_and_payment_is_voided(stack, live_db):
    skus = seed({"A": ("20.00", 4)})
    stack.stop_worker("orders")
    try:
        # Stock goes while orders is offline: its view still shows 4 when the order is placed.
        stock_adjust(sku=skus["A"], delta=-3, reason="breakage")
        assert ProductView.objects.using("orders").get(sku=skus["A"]).available == 4
        order_id = place({skus["A"]: 3}, "tok_visa")
    finally:
        stack.start_worker("orders")
    # PaymentRequested may reach payments after the rejection did: wait for the void itself.
    state = wait_for(lambda: (found := settled(order_id)) and found["payment"] == "VOIDED" and found,
                     message="the order to be rejected and its payment voided")
    assert state["status"] == "REJECTED"
    assert state["reason"] == f"out of stock: {skus['A']} (requested 3, available 1)"
    assert (state["reservation"], state["payment"], state["amount"]) == ("FAILED", "VOIDED", Decimal("60.00"))
    assert stock(skus.values()) == {skus["A"]: (1, 0, 2)}
    wait_views_equal(skus.values())


def flow_envelopes(correlation_ids: set[str]) -> list[dict]:
    return [row.envelope for context in CONTEXTS
            for row in OutboxMessage.objects.using(context).filter(correlation_id__in=correlation_ids).order_by("id")]


def snapshot(order_ids, skus) -> dict:
    return {"orders": [settled(o) for o in order_ids], "stock": stock(skus), "view": view(skus),
            "inbox": {c: InboxMessage.objects.using(c).count() for c in CONTEXTS}}


def test_every_event_of_the_flow_delivered_twice_changes_nothing(stack, live_db):
    skus = seed({"A": ("5.00", 10)})
    placed = [order_place(customer_name="Ada", customer_email="ada@example.com",
                          lines=[{"sku": skus["A"], "qty": 2}], payment_token=token)
              for token in ("tok_visa", "tok_declined")]
    for p in placed:
        wait_for(lambda: settled(p.order_id), message="the flows to settle")
    wait_views_equal(skus.values())
    before = snapshot([p.order_id for p in placed], skus.values())
    envelopes = flow_envelopes({p.correlation_id for p in placed})
    types = {e["event_type"] for e in envelopes}
    assert types >= {"OrderRequested", "StockReserved", "PaymentRequested", "PaymentAuthorized", "PaymentDeclined",
                     "OrderConfirmed", "OrderRejected", "StockReleased", "PaymentCaptured", "InventoryChanged"}
    sent = 0
    for envelope in envelopes:
        for subscriber in registry.subscribers_of(envelope["event_type"]):
            if subscriber in CONTEXTS:
                transport.send_delivery(subscriber, envelope, sent_at="2026-01-01T00:00:00Z")
                sent += 1
    assert sent >= 10
    stack.wait_idle(timeout=90)
    assert snapshot([p.order_id for p in placed], skus.values()) == before
