"""Writes of inventory. Every change of a product publishes InventoryChanged with
its next version, in the same transaction as the change."""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

from django.db import transaction

from contracts import InventoryChanged, Line, StockReleased, StockReservationFailed, StockReserved
from contracts import describe_shortages, merge_lines, shortages_of
from eventbus import lock_key, publish
from inventory.models import Product, RejectedOrder, Reservation, StockAdjustment

DB = "inventory"
log = logging.getLogger("inventory")


class StockError(ValueError):
    """A stock or product change that would break an invariant; the message says which."""


def money(value) -> Decimal:
    """A price as a Decimal with two places; raises StockError if it is not one."""
    try:
        price = Decimal(str(value)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise StockError(f"not a price: {value!r}") from None
    if not price.is_finite() or price < 0:
        raise StockError(f"a price must be zero or more, got {value!r}")
    return price


def _changed(product: Product) -> None:
    """Save the product with its next version and publish its new state."""
    product.version += 1
    product.save(using=DB)
    publish(
        InventoryChanged(
            sku=product.sku, name=product.name, price=f"{product.price:.2f}", on_hand=product.on_hand,
            reserved=product.reserved, available=product.available, version=product.version,
        ),
        context=DB,
    )


def _locked(skus) -> dict[str, Product]:
    rows = Product.objects.using(DB).select_for_update().filter(sku__in=sorted(set(skus))).order_by("sku")
    return {p.sku: p for p in rows}


def product_create(*, sku: str, name: str, price, on_hand: int = 0) -> Product:
    """Create a product (version 1) and publish it. Raises StockError if the SKU exists."""
    sku, name = (sku or "").strip(), (name or "").strip()
    if not sku or len(sku) > 64:
        raise StockError("a SKU needs 1 to 64 characters")
    if not name:
        raise StockError("a product needs a name")
    if isinstance(on_hand, bool) or not isinstance(on_hand, int) or on_hand < 0:
        raise StockError(f"on_hand must be an integer of 0 or more, got {on_hand!r}")
    with transaction.atomic(using=DB):
        if Product.objects.using(DB).filter(sku=sku).exists():
            raise StockError(f"product {sku} already exists")
        product = Product(sku=sku, name=name, price=money(price), on_hand=on_hand)
        _changed(product)
        if on_hand:
            StockAdjustment.objects.using(DB).create(sku=sku, kind=StockAdjustment.RESTOCK, delta=on_hand, reason="initial stock")
    return product


def product_reprice(*, sku: str, price) -> Product:
    """Set a product's price and publish the change."""
    with transaction.atomic(using=DB):
        product = _locked([sku]).get(sku)
        if product is None:
            raise StockError(f"unknown product {sku}")
        product.price = money(price)
        _changed(product)
    return product


def stock_adjust(*, sku: str, delta: int, reason: str, kind: str = StockAdjustment.CORRECTION) -> Product:
    """Restock (delta > 0) or correct on_hand by `delta`, with a reason.

    A correction never takes on_hand below zero or below what is reserved."""
    reason = (reason or "").strip()
    if kind not in (StockAdjustment.RESTOCK, StockAdjustment.CORRECTION):
        raise StockError(f"unknown adjustment kind {kind!r}")
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0:
        raise StockError("the change must be a non-zero integer")
    if kind == StockAdjustment.RESTOCK and delta < 0:
        raise StockError("a restock adds stock; use a correction to remove some")
    if not reason:
        raise StockError("a stock adjustment needs a reason")
    with transaction.atomic(using=DB):
        product = _locked([sku]).get(sku)
        if product is None:
            raise StockError(f"unknown product {sku}")
        new_on_hand = product.on_hand + delta
        if new_on_hand < 0:
            raise StockError(f"{sku}: on hand would be {new_on_hand}; it cannot go below zero")
        if new_on_hand < product.reserved:
            raise StockError(
                f"{sku}: on hand would be {new_on_hand}, below the {product.reserved} reserved for orders"
            )
        product.on_hand = new_on_hand
        _changed(product)
        StockAdjustment.objects.using(DB).create(sku=sku, kind=kind, delta=delta, reason=reason[:200])
    return product


def stock_reserve(*, order_id: str, lines) -> Reservation:
    """Hold every line of an order or none (publishes StockReserved or
    StockReservationFailed). Idempotent per order. If the order was already
    rejected, a successful reservation is released at once.

    The order's lock (`lock_key`) keeps the check for a rejection and the reservation
    together: a concurrent stock_release either runs before (and is seen here) or
    after (and finds the reservation to release)."""
    with transaction.atomic(using=DB):
        lock_key(DB, f"order:{order_id}")
        existing = Reservation.objects.using(DB).select_for_update().filter(order_id=order_id).first()
        if existing is not None:
            return existing
        wanted = merge_lines(lines)
        held = [{"sku": sku, "qty": qty} for sku, qty in sorted(wanted.items())]
        if not wanted or any(qty < 1 for qty in wanted.values()):  # never let a bad line add stock
            return _refuse(order_id, held, "invalid order lines", ())
        products = _locked(wanted)
        shortages = shortages_of(wanted, {sku: product.available for sku, product in products.items()})
        if shortages:
            return _refuse(order_id, held, "out of stock: " + describe_shortages(shortages), shortages)
        for sku, qty in sorted(wanted.items()):
            products[sku].reserved += qty
            _changed(products[sku])
        reservation = Reservation.objects.using(DB).create(order_id=order_id, lines=held, status=Reservation.HELD)
        publish(StockReserved(order_id=order_id, lines=_lines(reservation)), context=DB)
        if RejectedOrder.objects.using(DB).filter(order_id=order_id).exists():
            _release(reservation, products)
    return reservation


def _refuse(order_id: str, held: list, reason: str, shortages: tuple) -> Reservation:
    reservation = Reservation.objects.using(DB).create(
        order_id=order_id, lines=held, status=Reservation.FAILED, reason=reason[:500])
    publish(StockReservationFailed(order_id=order_id, reason=reason, shortages=shortages), context=DB)
    return reservation


def _lines(reservation: Reservation) -> tuple[Line, ...]:
    return tuple(Line(sku=line["sku"], qty=line["qty"]) for line in reservation.lines)


def _release(reservation: Reservation, products: dict[str, Product]) -> None:
    for line in reservation.lines:
        product = products[line["sku"]]
        product.reserved -= line["qty"]
        _changed(product)
    reservation.status = Reservation.RELEASED
    reservation.save(using=DB)
    publish(StockReleased(order_id=reservation.order_id, lines=_lines(reservation)), context=DB)


def stock_release(*, order_id: str, reason: str = "") -> Reservation | None:
    """Give back the stock held for a rejected order (StockReleased), or sold to it: a
    command-driven order's CommitStock can commit after its sender gave up, so a sale
    is put back on hand. With no reservation yet, remember the rejection so a later
    reservation is released at once (and a later commit finds nothing held)."""
    with transaction.atomic(using=DB):
        lock_key(DB, f"order:{order_id}")
        RejectedOrder.objects.using(DB).get_or_create(order_id=order_id, defaults={"reason": reason[:500]})
        reservation = Reservation.objects.using(DB).select_for_update().filter(order_id=order_id).first()
        if reservation is None or reservation.status not in (Reservation.HELD, Reservation.COMMITTED):
            return reservation
        products = _locked(line["sku"] for line in reservation.lines)
        if reservation.status == Reservation.COMMITTED:
            log.warning("order %s rejected after its stock was committed; the sale is undone", order_id)
            for line in reservation.lines:  # back on hand and held again, then released below
                products[line["sku"]].on_hand += line["qty"]
                products[line["sku"]].reserved += line["qty"]
        _release(reservation, products)
    return reservation


def stock_commit(*, order_id: str) -> Reservation | None:
    """Turn the held stock of a confirmed order into a sale: on_hand and reserved
    both drop by each line's quantity. Idempotent."""
    with transaction.atomic(using=DB):
        reservation = Reservation.objects.using(DB).select_for_update().filter(order_id=order_id).first()
        if reservation is None or reservation.status != Reservation.HELD:
            if reservation is None or reservation.status != Reservation.COMMITTED:
                log.error("order %s confirmed but no stock is held for it (%s)", order_id,
                          reservation.status if reservation else "no reservation")
            return reservation
        products = _locked(line["sku"] for line in reservation.lines)
        for line in reservation.lines:
            product = products[line["sku"]]
            product.on_hand -= line["qty"]
            product.reserved -= line["qty"]
            _changed(product)
        reservation.status = Reservation.COMMITTED
        reservation.save(using=DB)
    return reservation
