"""The command-driven mode of the comparison lab: orders drives the flow itself.

Orders sends each step as a command to the context that owns the data and waits
for the reply, with a timeout: ReserveStock, AuthorizePayment, CommitStock,
CapturePayment — or, when a step fails, the releases of what earlier steps hold.
The owners still make every change through their own services (single writer);
what changes is who waits for whom. A command that times out never takes effect
(its owner drops it once its sender gave up), and the order is rejected with
OrderRejected, whose handlers release whatever is still held when the owners
come back. Compare with the choreography in services.py, where nobody waits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from contracts import (
    AuthorizePayment,
    CapturePayment,
    CommitStock,
    Customer,
    Line,
    OrderConfirmed,
    OrderRejected,
    ReleaseStock,
    ReserveStock,
    VoidPayment,
)
from eventbus import publish
from eventbus import telemetry
from eventbus.commands import CommandTimeout, send_command
from orders.models import Order
from orders.services import DB, _snapshot
from orders.validation import OrderInvalid, validate_order


@dataclass(frozen=True)
class CommandDrivenOrder:
    order_id: str
    correlation_id: str
    status: str
    reason: str


class OrderTimedOut(Exception):
    """A context did not answer in time; the order was rejected and nothing is kept."""

    def __init__(self, message: str, *, order_id: str, correlation_id: str):
        super().__init__(message)
        self.order_id, self.correlation_id = order_id, correlation_id


def order_place_by_commands(*, customer_name, customer_email, lines, payment_token) -> CommandDrivenOrder:
    """Place and drive an order with commands; returns once it is decided.

    Raises OrderInvalid for bad input (nothing recorded, nothing sent) and
    OrderTimedOut when a context did not answer within EVENTFLOW_COMMAND_TIMEOUT.
    """
    errors = validate_order(customer_name=customer_name, customer_email=customer_email,
                            lines=lines, payment_token=payment_token)
    if errors:
        raise OrderInvalid(errors)
    order_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    customer = Customer(name=customer_name.strip(), email=customer_email.strip())
    order_lines = tuple(Line(sku=line["sku"], qty=line["qty"]) for line in lines)
    with transaction.atomic(using=DB):
        order = Order(order_id=order_id, mode=Order.COMMAND, requested=True, customer_name=customer.name,
                      customer_email=customer.email, payment_token=payment_token, stock_check="remote")
        # Prices from the local view; stock is for inventory to answer (ReserveStock).
        _snapshot(order, [(line.sku, line.qty) for line in order_lines], remote_shortages=[])

    def ask(command) -> dict:
        return send_command(command, sender=DB, timeout=settings.EVENTFLOW_COMMAND_TIMEOUT,
                            correlation_id=correlation_id).reply

    held = []  # compensating commands for what earlier steps hold, newest last
    try:
        reply = ask(ReserveStock(order_id=order_id, lines=order_lines))
        if not reply["ok"]:
            return _reject(order, correlation_id, reply.get("reason") or "out of stock")
        held.append(ReleaseStock(order_id=order_id))
        reply = ask(AuthorizePayment(order_id=order_id, amount=f"{order.total:.2f}", currency=order.currency,
                                     payment_token=payment_token))
        if not reply["ok"]:
            _compensate(held, ask)
            return _reject(order, correlation_id, f"payment declined: {reply.get('reason') or 'declined'}")
        held.append(VoidPayment(order_id=order_id))
        reply = ask(CommitStock(order_id=order_id))
        if not reply["ok"]:
            _compensate(held, ask)
            return _reject(order, correlation_id, reply.get("reason") or "stock could not be committed")
        held = []  # sold: from here on, the confirmation completes the order (see below)
        ask(CapturePayment(order_id=order_id))
    except CommandTimeout as exc:
        if held:
            _compensate(held, ask)
        reason = f"{exc}; the order was rejected and nothing is kept"
        _reject(order, correlation_id, reason)
        raise OrderTimedOut(reason, order_id=order_id, correlation_id=correlation_id) from exc
    # Reached also when CapturePayment alone timed out: the stock is sold, and payments
    # captures on OrderConfirmed when it is back (its capture is idempotent).
    return _confirm(order, correlation_id)


def _compensate(held, ask) -> None:
    """Release what earlier steps hold, newest first. An unanswered release is left to
    the OrderRejected event, which the owner handles when it is back."""
    for command in reversed(held):
        try:
            ask(command)
        except CommandTimeout:
            pass


def _reject(order: Order, correlation_id: str, reason: str) -> CommandDrivenOrder:
    with transaction.atomic(using=DB):
        order.status, order.reason, order.decided_at = Order.REJECTED, reason[:500], timezone.now()
        order.save(using=DB)
        telemetry.order_decided(mode=order.mode, outcome=order.status, using=DB)
        publish(OrderRejected(order_id=str(order.order_id), reason=reason), context=DB, correlation_id=correlation_id)
    return CommandDrivenOrder(str(order.order_id), correlation_id, order.status, order.reason)


def _confirm(order: Order, correlation_id: str) -> CommandDrivenOrder:
    with transaction.atomic(using=DB):
        order.status, order.decided_at = Order.CONFIRMED, timezone.now()
        order.has_reservation = order.has_authorization = True
        order.save(using=DB)
        telemetry.order_decided(mode=order.mode, outcome=order.status, using=DB)
        publish(OrderConfirmed(order_id=str(order.order_id), total=f"{order.total:.2f}"), context=DB,
                correlation_id=correlation_id)
    return CommandDrivenOrder(str(order.order_id), correlation_id, order.status, order.reason)
