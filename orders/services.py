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

from contracts import (
    CheckStock,
    Customer,
    Line,
    OrderConfirmed,
    OrderRejected,
    OrderRequested,
    PaymentRequested,
    Shortage,
    describe_shortages,
    merge_lines,
    shortages_of,
)
from eventbus import CommandFailed, get_flag, order_decided, publish, send_command
from orders.models import Order, OrderLine, ProductView
from orders.validation import OrderInvalid, validate_order

DB = "orders"
# Every price in the catalog is in euros: there is one currency, not a setting.
CURRENCY = "EUR"


@dataclass(frozen=True)
class PlacedOrder:
    order_id: str
    correlation_id: str


def order_request(*, customer_name, customer_email, lines, payment_token) -> tuple[OrderRequested, str]:
    """A request checked and stated as its event, with the correlation id of its new flow.

    `lines` is [{"sku": str, "qty": int}]. Raises OrderInvalid({field: [messages]}) when
    the request is invalid; nothing is written either way. Both modes open with it."""
    errors = validate_order(
        customer_name=customer_name, customer_email=customer_email, lines=lines, payment_token=payment_token
    )
    if errors:
        raise OrderInvalid(errors)
    event = OrderRequested(
        order_id=str(uuid.uuid4()),
        customer=Customer(name=customer_name.strip(), email=customer_email.strip()),
        payment_token=payment_token,
        lines=tuple(Line(sku=line["sku"], qty=line["qty"]) for line in lines),
    )
    return event, str(uuid.uuid4())


def order_open(request: OrderRequested, *, stock_check: str, shortages=None, mode: str = Order.EVENT) -> Order:
    """Write the requested order in the caller's transaction, as it stands now: its lines
    priced from the local view, its total, and the stock it lacks — `shortages` when a
    query to inventory answered them, else the local view's. A command-driven order is
    requested at once (no OrderRequested comes back to it)."""
    order = Order(order_id=request.order_id, mode=mode, requested=mode == Order.COMMAND,
                  customer_name=request.customer.name, customer_email=request.customer.email,
                  payment_token=request.payment_token, stock_check=stock_check)
    _snapshot(order, request.lines, shortages=shortages)
    return order


def _snapshot(order: Order, lines, *, shortages=None) -> None:
    """Price `lines` (Line objects) from the local view and keep the stock they lack:
    `shortages` if given, else the local view's now."""
    views = {v.sku: v for v in ProductView.objects.using(DB).filter(sku__in={line.sku for line in lines})}
    priced = [
        OrderLine(order=order, sku=line.sku, qty=line.qty, name=views[line.sku].name if line.sku in views else line.sku,
                  unit_price=views[line.sku].price if line.sku in views else Decimal("0.00"))
        for line in lines
    ]
    if shortages is None:
        shortages = shortages_of(merge_lines(lines), {sku: view.available for sku, view in views.items()})
    order.total = sum((line.unit_price * line.qty for line in priced), Decimal("0.00"))
    order.currency = CURRENCY
    order.view_shortage = describe_shortages(shortages)[:500]
    order.save(using=DB)
    OrderLine.objects.using(DB).bulk_create(priced)


def order_place(*, customer_name, customer_email, lines, payment_token) -> PlacedOrder:
    """Validate a request against the local view and publish OrderRequested (a new flow).

    Raises OrderInvalid (see order_request) and publishes nothing when the request is
    invalid. Stock is not a validation error: an order beyond the local view's stock is
    placed and rejected by the flow, visibly. With the `stock_check` switch on "remote"
    (the lab's hybrid), the stock check is a query to inventory instead of the local
    view; StockQueryFailed if it goes unanswered."""
    event, correlation_id = order_request(customer_name=customer_name, customer_email=customer_email,
                                          lines=lines, payment_token=payment_token)
    stock_check = get_flag("stock_check")
    shortages = stock_query(lines=event.lines, correlation_id=correlation_id) if stock_check == "remote" else None
    with transaction.atomic(using=DB):
        order_open(event, stock_check=stock_check, shortages=shortages)
        publish(event, context=DB, correlation_id=correlation_id)
    return PlacedOrder(order_id=event.order_id, correlation_id=correlation_id)


class StockQueryFailed(Exception):
    """Inventory did not answer the remote stock query in time: the order was not placed."""


def stock_query(*, lines, correlation_id: str) -> tuple[Shortage, ...]:
    """Ask inventory (a synchronous query, the hybrid mode) which lines it cannot cover."""
    try:
        sent = send_command(CheckStock(lines=tuple(lines)), sender=DB,
                            timeout=settings.EVENTFLOW_COMMAND_TIMEOUT, correlation_id=correlation_id)
    except CommandFailed as exc:
        raise StockQueryFailed(f"{exc}: the stock check is a remote query in this mode; nothing was placed") from exc
    return tuple(Shortage(**shortage) for shortage in sent.reply.get("shortages", []))


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


def _failure(order: Order) -> str:
    """Why the order must be rejected, or "" while nothing failed. The first failure known
    wins, in this order:
    1. the stock check when it was placed (the local view, or the query to inventory)
       found a shortage;
    2. inventory could not reserve its stock;
    3. payments declined its payment."""
    if order.view_shortage:
        checked = "local view" if order.stock_check == "local" else "inventory query"
        return f"out of stock ({checked}): {order.view_shortage}"
    if order.stock_failure:
        return order.stock_failure
    if order.payment_failure:
        return f"payment declined: {order.payment_failure}"
    return ""


def _decide(order: Order) -> None:
    """Reject on the first failure known (_failure) or confirm once stock is held and
    payment authorised. Waits for the request itself."""
    if order.is_decided or not order.requested or order.mode == Order.COMMAND:
        return  # a command-driven order is decided by the code that drives it
    failure = _failure(order)
    if failure:
        order_decide(order=order, status=Order.REJECTED, reason=failure)
    elif order.has_reservation and order.has_authorization:
        order_decide(order=order, status=Order.CONFIRMED)


def order_decide(*, order: Order, status: str, reason: str = "", correlation_id: str | None = None) -> None:
    """Decide a pending order locked by the caller, in its transaction: CONFIRMED, or
    REJECTED with `reason`; record the decision and publish it (OrderConfirmed or
    OrderRejected)."""
    order.status, order.decided_at = status, timezone.now()
    if status == Order.REJECTED:
        order.reason = reason[:500]
        event = OrderRejected(order_id=str(order.order_id), reason=reason)
    else:
        event = OrderConfirmed(order_id=str(order.order_id), total=f"{order.total:.2f}")
    order.save(using=DB)
    order_decided(mode=order.mode, outcome=order.status, using=DB)
    publish(event, context=DB, correlation_id=correlation_id)


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
            _snapshot(order, lines)
        order.requested = True
        order.save(using=DB)
        if not order.view_shortage:
            publish(PaymentRequested(order_id=order_id, amount=f"{order.total:.2f}", currency=order.currency,
                                     payment_token=order.payment_token), context=DB)
        _decide(order)
    return order


def order_note(*, order_id: str, reserved: bool = False, stock_failure: str = "", payment_id: str = "",
               payment_failure: str = "") -> Order:
    """Keep one fact about the order on its row — inventory holds its stock (`reserved`) or
    could not hold it (`stock_failure`); payments authorised it (`payment_id`) or declined
    it (`payment_failure`) — then decide the order if the facts now suffice. A failure
    already kept is not replaced."""
    with transaction.atomic(using=DB):
        order = _locked(order_id)
        order.has_reservation = order.has_reservation or reserved
        if payment_id:
            order.has_authorization, order.payment_id = True, payment_id
        order.stock_failure = order.stock_failure or stock_failure[:500]
        order.payment_failure = order.payment_failure or payment_failure[:450]
        order.save(using=DB)
        _decide(order)
    return order
