"""Payments' subscriptions: event in -> service call."""

from eventbus import register_view, subscribe
from payments import selectors, services


def on_payment_requested(event, envelope):
    services.payment_authorize(order_id=event.order_id, amount=event.amount, currency=event.currency, token=event.payment_token)


def on_order_confirmed(event, envelope):
    services.payment_capture(order_id=event.order_id)


def on_order_rejected(event, envelope):
    services.payment_void(order_id=event.order_id, reason=event.reason)


subscribe("payments", {
    "PaymentRequested": on_payment_requested,
    "OrderConfirmed": on_order_confirmed,
    "OrderRejected": on_order_rejected,
})
register_view("payments", selectors.totals_view)
