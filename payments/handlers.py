"""Payments' subscriptions and commands: message in -> service call."""

from eventbus import handle_commands, keep_for, register_retention, register_view, subscribe
from payments import selectors, services
from payments.models import Payment, RejectedOrder


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


# --- commands of the command-driven mode (the caller waits for the reply) --------
def authorize_payment(command) -> dict:
    payment = services.payment_authorize(order_id=command.order_id, amount=command.amount,
                                         currency=command.currency, token=command.payment_token)
    authorized = payment.status == Payment.AUTHORIZED
    return {"ok": authorized, "payment_id": str(payment.payment_id), "reason": payment.reason}


def capture_payment(command) -> dict:
    payment = services.payment_capture(order_id=command.order_id)
    captured = payment is not None and payment.status == Payment.CAPTURED
    return {"ok": captured, "reason": "" if captured else "no authorisation held for this order"}


def void_payment(command) -> dict:
    services.payment_void(order_id=command.order_id, reason="voided by command")
    return {"ok": True}


handle_commands("payments", {
    "AuthorizePayment": authorize_payment,
    "CapturePayment": capture_payment,
    "VoidPayment": void_payment,
})


# A rejection marker guards against the order's late deliveries: kept as long as the inbox.
register_retention("payments", keep_for(RejectedOrder, context="payments", field="at", setting="EVENTFLOW_RETENTION_INBOX"))
