"""Writes of payments. Test tokens decide the outcome:
tok_visa approves, tok_declined declines, tok_insufficient_funds declines above a limit."""

from __future__ import annotations

import logging
import os
from decimal import Decimal

from django.db import transaction

from contracts import PaymentAuthorized, PaymentCaptured, PaymentDeclined, PaymentVoided
from eventbus import lock_key, publish
from payments.models import Payment, RejectedOrder

DB = "payments"
log = logging.getLogger("payments")

# tok_insufficient_funds approves amounts up to this limit and declines above it.
INSUFFICIENT_FUNDS_LIMIT = Decimal(os.environ.get("EVENTFLOW_INSUFFICIENT_FUNDS_LIMIT", "100.00"))


def decline_reason(*, token: str, amount: Decimal) -> str:
    """Why the token's issuer refuses `amount`, or "" when it approves."""
    if token == "tok_visa":
        return ""
    if token == "tok_declined":
        return "card declined"
    if token == "tok_insufficient_funds":
        return "insufficient funds" if amount > INSUFFICIENT_FUNDS_LIMIT else ""
    return "unknown payment token"


def payment_authorize(*, order_id: str, amount: str, currency: str, token: str) -> Payment:
    """Authorise or decline an order's payment (PaymentAuthorized / PaymentDeclined).
    Idempotent per order. If the order was already rejected, an authorisation is voided at once."""
    with transaction.atomic(using=DB):
        lock_key(DB, f"order:{order_id}")  # with payment_void's: the rejection is seen, or sees this payment
        existing = Payment.objects.using(DB).select_for_update().filter(order_id=order_id).first()
        if existing is not None:
            return existing
        value = Decimal(amount).quantize(Decimal("0.01"))
        reason = decline_reason(token=token, amount=value)
        payment = Payment.objects.using(DB).create(
            order_id=order_id, amount=value, currency=currency, token=token[:64],
            status=Payment.DECLINED if reason else Payment.AUTHORIZED, reason=reason,
        )
        if reason:
            publish(PaymentDeclined(order_id=order_id, reason=reason), context=DB)
            return payment
        publish(PaymentAuthorized(order_id=order_id, payment_id=str(payment.payment_id), amount=_text(payment.amount)), context=DB)
        if RejectedOrder.objects.using(DB).filter(order_id=order_id).exists():
            _void(payment)
    return payment


def _text(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _void(payment: Payment) -> None:
    payment.status = Payment.VOIDED
    payment.save(using=DB)
    publish(PaymentVoided(order_id=payment.order_id, payment_id=str(payment.payment_id), amount=_text(payment.amount)), context=DB)


def payment_void(*, order_id: str, reason: str = "") -> Payment | None:
    """Release the authorisation of a rejected order (PaymentVoided), or refund its
    capture: a command-driven order's CapturePayment can commit after its sender gave
    up. With no payment yet, remember the rejection so a later authorisation is voided
    at once (and a later capture finds nothing authorised)."""
    with transaction.atomic(using=DB):
        lock_key(DB, f"order:{order_id}")
        RejectedOrder.objects.using(DB).get_or_create(order_id=order_id, defaults={"reason": reason[:500]})
        payment = Payment.objects.using(DB).select_for_update().filter(order_id=order_id).first()
        if payment is not None and payment.status == Payment.CAPTURED:
            log.warning("order %s rejected after its payment was captured; refunded", order_id)
            payment.reason = "refunded: captured after its order was rejected"
            _void(payment)
        elif payment is not None and payment.status == Payment.AUTHORIZED:
            _void(payment)
    return payment


def payment_capture(*, order_id: str) -> Payment | None:
    """Take the money of a confirmed order (PaymentCaptured). Idempotent."""
    with transaction.atomic(using=DB):
        payment = Payment.objects.using(DB).select_for_update().filter(order_id=order_id).first()
        if payment is None or payment.status != Payment.AUTHORIZED:
            if payment is None or payment.status != Payment.CAPTURED:
                log.error("order %s confirmed but no authorisation is held (%s)", order_id,
                          payment.status if payment else "no payment")
            return payment
        payment.status = Payment.CAPTURED
        payment.save(using=DB)
        publish(PaymentCaptured(order_id=order_id, payment_id=str(payment.payment_id), amount=_text(payment.amount)), context=DB)
    return payment
