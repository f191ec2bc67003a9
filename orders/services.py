"""Writes of orders. Only orders changes orders; every decision is published.

order_place writes the request as the local view saw it (prices, any shortage) and
publishes OrderRequested in one transaction. The handlers call the other services
in any delivery order: facts are kept on the Order row (created on the first fact
seen, a placeholder until the request is known) and the order is decided once
OrderRequested has been handled and enough facts are in. What the order is checked
against is fixed at request time, so the decision does not depend on delivery order.
A decided order never changes status again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from contracts import CheckStock, Customer, Line, OrderConfirmed, OrderRejected, OrderRequested, PaymentRequested
from eventbus import publish
from eventbus import telemetry
from eventbus.commands import CommandFailed, send_command
from eventbus.flags import get_flag
from orders.models import Order, OrderLine, ProductView
from orders.validation import OrderInvalid, validate_order

DB = "orders"
CURRENCY = getattr(settings, "EVENTFLOW_CURRENCY", "EUR")


@dataclass(frozen=True)
class PlacedOrder:
    order_id: str
    correlation_id: str


def _snapshot(order: Order, lines, *, remote_shortages: list[str] | None = None) -> None:
    """Price `lines` ((sku, qty) pairs) and check their stock in the local view, now
    (or take the shortages a remote query to inventory answered)."""
    views = {v.sku: v for v in ProductView.objects.using(DB).filter(sku__in={sku for sku, _ in lines})}
    priced = [
        OrderLine(order=order, sku=sku, qty=qty, name=views[sku].name if sku in views else sku,
                  unit_price=views[sku].price if sku in views else Decimal("0.00"))
        for sku, qty in lines
    ]
    wanted: dict[str, int] = {}
    for sku, qty in lines:
        wanted[sku] = wanted.get(sku, 0) + qty
    shortages = [
        f"{sku} (requested {qty}, available {views[sku].available if sku in views else 0})"
        for sku, qty in sorted(wanted.items())
        if sku not in views or views[sku].available < qty
    ]
    order.total = sum((line.unit_price * line.qty for line in priced), Decimal("0.00"))
    order.currency = CURRENCY
    if remote_shortages is not None:
        shortages = remote_shortages
    order.view_shortage = ", ".join(shortages)[:500]
    order.save(using=DB)
    OrderLine.objects.using(DB).bulk_create(priced)


def order_place(*, customer_name, customer_email, lines, payment_token) -> PlacedOrder:
    """Validate a request against the local view and publish OrderRequested (a new flow).

    `lines` is [{"sku": str, "qty": int}]. Raises OrderInvalid({field: [messages]}) and
    publishes nothing when the request is invalid. Stock is not a validation error: an
    order beyond the local view's stock is placed and rejected by the flow, visibly.
    With the `stock_check` switch on "remote" (the lab's hybrid), the stock check is a
    query to inventory instead of the local view; StockQueryFailed if it goes unanswered."""
    errors = validate_order(
        customer_name=customer_name, customer_email=customer_email, lines=lines, payment_token=payment_token
    )
    if errors:
        raise OrderInvalid(errors)
    order_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    customer = Customer(name=customer_name.strip(), email=customer_email.strip())
    event = OrderRequested(
        order_id=order_id, customer=customer, payment_token=payment_token,
        lines=tuple(Line(sku=line["sku"], qty=line["qty"]) for line in lines),
    )
    stock_check = get_flag("stock_check")
    remote_shortages = None
    if stock_check == "remote":
        remote_shortages = stock_query(lines=event.lines, correlation_id=correlation_id)
    with transaction.atomic(using=DB):
        order = Order(order_id=order_id, customer_name=customer.name, customer_email=customer.email,
                      payment_token=payment_token, stock_check=stock_check)
        _snapshot(order, [(line.sku, line.qty) for line in event.lines], remote_shortages=remote_shortages)
        publish(event, context=DB, correlation_id=correlation_id)
    return PlacedOrder(order_id=order_id, correlation_id=correlation_id)


class StockQueryFailed(Exception):
    """Inventory did not answer the remote stock query in time: the order was not placed."""


def stock_query(*, lines, correlation_id: str) -> list[str]:
    """Ask inventory (a synchronous query, the hybrid mode) which lines it cannot cover."""
    try:
        sent = send_command(CheckStock(lines=tuple(lines)), sender=DB,
                            timeout=settings.EVENTFLOW_COMMAND_TIMEOUT, correlation_id=correlation_id)
    except CommandFailed as exc:
        raise StockQueryFailed(f"{exc}: the stock check is a remote query in this mode; nothing was placed") from exc
    return [f"{s['sku']} (requested {s['requested']}, available {s['available']})"
            for s in sent.reply.get("shortages", [])]


def productview_apply(*, sku: str, name: str, price: str, on_hand: int, reserved: int, available: int, version: int) -> ProductView:
    """Keep the newest state of a product: an older or equal version never overwrites."""
    with transaction.atomic(using=DB):
        view = ProductView.objects.using(DB).select_for_update().filter(sku=sku).first()
        if view is not None and view.version >= version:
            return view
        view = view or ProductView(sku=sku)
        view.name, view.price, view.version = name, Decimal(price), version
        view.on_hand, view.reserved, view.available = on_hand, reserved, available
        view.save(using=DB)
    return view


def _locked(order_id: str) -> Order:
    order, _ = Order.objects.using(DB).select_for_update().get_or_create(order_id=order_id)
    return order


def _decide(order: Order) -> None:
    """Reject on the first failure known (local view, stock, payment, in that order) or
    confirm once stock is held and payment authorised. Waits for the request itself."""
    if order.is_decided or not order.requested or order.mode == Order.COMMAND:
        return  # a command-driven order is decided by the code that drives it
    failure = next((reason for reason in (
        f"out of stock ({'local view' if order.stock_check == 'local' else 'inventory query'}): "
        f"{order.view_shortage}" if order.view_shortage else "",
        order.stock_failure,
        f"payment declined: {order.payment_failure}" if order.payment_failure else "",
    ) if reason), "")
    if failure:
        order.status, order.reason, order.decided_at = Order.REJECTED, failure[:500], timezone.now()
        order.save(using=DB)
        telemetry.order_decided(mode=order.mode, outcome=order.status, using=DB)
        publish(OrderRejected(order_id=str(order.order_id), reason=failure), context=DB)
    elif order.has_reservation and order.has_authorization:
        order.status, order.decided_at = Order.CONFIRMED, timezone.now()
        order.save(using=DB)
        telemetry.order_decided(mode=order.mode, outcome=order.status, using=DB)
        publish(OrderConfirmed(order_id=str(order.order_id), total=f"{order.total:.2f}"), context=DB)


def order_record(*, order_id: str, customer_name: str, customer_email: str, lines, payment_token: str) -> Order:
    """Record a requested order as PENDING, then act on the local view's stock as seen
    when it was placed: a shortage rejects it, else payment is requested. Idempotent."""
    with transaction.atomic(using=DB):
        order = _locked(order_id)
        if order.requested:
            return order
        if not order.lines.exists():  # not placed through order_place: check the view now
            order.customer_name, order.customer_email = customer_name[:100], customer_email[:254]
            order.payment_token = payment_token[:64]
            _snapshot(order, [(line.sku, line.qty) for line in lines])
        order.requested = True
        order.save(using=DB)
        if not order.view_shortage:
            publish(PaymentRequested(order_id=order_id, amount=f"{order.total:.2f}", currency=order.currency,
                                     payment_token=order.payment_token), context=DB)
        _decide(order)
    return order


def order_note_reserved(*, order_id: str) -> Order:
    """Inventory holds the order's stock."""
    with transaction.atomic(using=DB):
        order = _locked(order_id)
        order.has_reservation = True
        order.save(using=DB)
        _decide(order)
    return order


def order_note_reservation_failed(*, order_id: str, reason: str) -> Order:
    """Inventory could not hold the order's stock: the order will be rejected."""
    with transaction.atomic(using=DB):
        order = _locked(order_id)
        order.stock_failure = order.stock_failure or reason[:500]
        order.save(using=DB)
        _decide(order)
    return order


def order_note_authorized(*, order_id: str, payment_id: str) -> Order:
    """Payments holds an authorisation for the order."""
    with transaction.atomic(using=DB):
        order = _locked(order_id)
        order.has_authorization, order.payment_id = True, payment_id
        order.save(using=DB)
        _decide(order)
    return order


def order_note_declined(*, order_id: str, reason: str) -> Order:
    """Payments refused the order's payment: the order will be rejected."""
    with transaction.atomic(using=DB):
        order = _locked(order_id)
        order.payment_failure = order.payment_failure or reason[:450]
        order.save(using=DB)
        _decide(order)
    return order
