"""Writes of orders. Only orders changes orders; every decision is published.

The handlers call the `order_note_*` services in any delivery order: an Order row is
created on the first fact seen (a placeholder until its OrderRequested), and the
order is decided once enough facts are in. A decided order never changes status.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from contracts import Customer, Line, OrderConfirmed, OrderRejected, OrderRequested, PaymentRequested
from eventbus import publish
from orders.models import Order, OrderLine, ProductView
from orders.validation import OrderInvalid, validate_order

DB = "orders"
CURRENCY = getattr(settings, "EVENTFLOW_CURRENCY", "EUR")


@dataclass(frozen=True)
class PlacedOrder:
    order_id: str
    correlation_id: str


def order_place(*, customer_name, customer_email, lines, payment_token) -> PlacedOrder:
    """Validate a request against the local view and publish OrderRequested (a new flow).

    `lines` is [{"sku": str, "qty": int}]. Raises OrderInvalid({field: [messages]});
    nothing is published then. The order itself is recorded by the OrderRequested handler."""
    errors = validate_order(
        customer_name=customer_name, customer_email=customer_email, lines=lines, payment_token=payment_token
    )
    if errors:
        raise OrderInvalid(errors)
    order_id = str(uuid.uuid4())
    event = OrderRequested(
        order_id=order_id,
        customer=Customer(name=customer_name.strip(), email=customer_email.strip()),
        lines=tuple(Line(sku=line["sku"], qty=line["qty"]) for line in lines),
        payment_token=payment_token,
    )
    with transaction.atomic(using=DB):
        envelope = publish(event, context=DB)
    return PlacedOrder(order_id=order_id, correlation_id=envelope.correlation_id)


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


def _reject(order: Order, reason: str) -> None:
    if order.is_decided:
        return
    order.status, order.reason, order.decided_at = Order.REJECTED, reason[:500], timezone.now()
    order.save(using=DB)
    publish(OrderRejected(order_id=str(order.order_id), reason=reason), context=DB)


def _decide(order: Order) -> None:
    """Confirm once the order is known, its stock held and its payment authorised."""
    if order.is_decided or not (order.requested and order.has_reservation and order.has_authorization):
        return
    order.status, order.decided_at = Order.CONFIRMED, timezone.now()
    order.save(using=DB)
    publish(OrderConfirmed(order_id=str(order.order_id), total=f"{order.total:.2f}"), context=DB)


def order_record(*, order_id: str, customer_name: str, customer_email: str, lines, payment_token: str) -> Order:
    """Record a requested order as PENDING, priced from the local view, then check the
    local view's stock: a shortage rejects it, else payment is requested. Idempotent."""
    with transaction.atomic(using=DB):
        order = _locked(order_id)
        if order.requested:
            return order
        views = {v.sku: v for v in ProductView.objects.using(DB).filter(sku__in={line.sku for line in lines})}
        order.requested = True
        order.customer_name, order.customer_email = customer_name[:100], customer_email[:254]
        order.payment_token, order.currency = payment_token[:64], CURRENCY
        priced = [
            OrderLine(order=order, sku=line.sku, qty=line.qty,
                      name=views[line.sku].name if line.sku in views else line.sku,
                      unit_price=views[line.sku].price if line.sku in views else Decimal("0.00"))
            for line in lines
        ]
        order.total = sum((line.unit_price * line.qty for line in priced), Decimal("0.00"))
        order.save(using=DB)
        OrderLine.objects.using(DB).bulk_create(priced)
        if order.is_decided:
            return order
        wanted: dict[str, int] = {}
        for line in lines:
            wanted[line.sku] = wanted.get(line.sku, 0) + line.qty
        shortages = [
            f"{sku} (requested {qty}, available {views[sku].available if sku in views else 0})"
            for sku, qty in sorted(wanted.items())
            if sku not in views or views[sku].available < qty
        ]
        if shortages:
            _reject(order, "out of stock (local view): " + ", ".join(shortages))
            return order
        publish(PaymentRequested(order_id=order_id, amount=f"{order.total:.2f}", currency=CURRENCY,
                                 payment_token=payment_token), context=DB)
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


def order_note_authorized(*, order_id: str, payment_id: str) -> Order:
    """Payments holds an authorisation for the order."""
    with transaction.atomic(using=DB):
        order = _locked(order_id)
        order.has_authorization, order.payment_id = True, payment_id
        order.save(using=DB)
        _decide(order)
    return order


def order_reject(*, order_id: str, reason: str) -> Order:
    """Reject the order unless it is already decided (publishes OrderRejected)."""
    with transaction.atomic(using=DB):
        order = _locked(order_id)
        _reject(order, reason)
    return order
