"""Inventory's subscriptions: event in -> service call."""

from eventbus import register_view, subscribe
from inventory import selectors, services


def on_order_requested(event, envelope):
    services.stock_reserve(order_id=event.order_id, lines=event.lines)


def on_order_rejected(event, envelope):
    services.stock_release(order_id=event.order_id, reason=event.reason)


def on_order_confirmed(event, envelope):
    services.stock_commit(order_id=event.order_id)


subscribe("inventory", {
    "OrderRequested": on_order_requested,
    "OrderRejected": on_order_rejected,
    "OrderConfirmed": on_order_confirmed,
})
register_view("inventory", selectors.stock_view)
