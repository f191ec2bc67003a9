"""The event catalog, version 1.

Each event states a fact in the past tense. It is a frozen dataclass whose name
is its `event_type`; `producer` names the only context that may publish it.
Money travels as a decimal string ("12.50") so no float ever rounds it; the
currency is ISO 4217. No payment card number exists anywhere: payments use test
tokens (`tok_visa`, `tok_declined`, `tok_insufficient_funds`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from contracts.registry import register


@dataclass(frozen=True)
class Customer:
    """Who placed an order."""

    name: str
    email: str


@dataclass(frozen=True)
class Line:
    """One line of an order or reservation: `qty` units of product `sku`."""

    sku: str
    qty: int


@dataclass(frozen=True)
class Shortage:
    """A line that stock could not cover: `requested` units, `available` on hand."""

    sku: str
    requested: int
    available: int


def merge_lines(lines) -> dict[str, int]:
    """{sku: qty} of order lines (anything with `sku` and `qty`), summing repeated SKUs."""
    wanted: dict[str, int] = {}
    for line in lines:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.qty
    return wanted


def shortages_of(wanted: Mapping[str, int], available: Mapping[str, int]) -> tuple[Shortage, ...]:
    """The SKUs of `wanted` ({sku: units}) that `available` ({sku: units}) cannot cover, by
    SKU; a SKU missing from `available` is short whatever the quantity. Inventory applies
    it to its stock, orders to its local view of that stock."""
    return tuple(
        Shortage(sku=sku, requested=qty, available=available.get(sku, 0))
        for sku, qty in sorted(wanted.items())
        if sku not in available or available[sku] < qty
    )


def describe_shortages(shortages) -> str:
    """Shortages as people read them in a rejection: "A (requested 3, available 1), B (...)"."""
    return ", ".join(f"{s.sku} (requested {s.requested}, available {s.available})" for s in shortages)


@register
@dataclass(frozen=True)
class OrderRequested:
    """A customer asked for an order (web form or API). Orders records it as PENDING;
    inventory tries to reserve its lines. Produced by orders."""

    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "orders"
    order_id: str
    customer: Customer
    lines: tuple[Line, ...]
    payment_token: str


@register
@dataclass(frozen=True)
class InventoryChanged:
    """The authoritative state of one product after any change. `version` grows by one
    with every change of that SKU, so a subscriber keeps only the newest it has seen.
    Produced by inventory."""

    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "inventory"
    sku: str
    name: str
    price: str
    on_hand: int
    reserved: int
    available: int
    version: int


@register
@dataclass(frozen=True)
class StockReserved:
    """Inventory holds `lines` for `order_id`. Produced by inventory."""

    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "inventory"
    order_id: str
    lines: tuple[Line, ...]


@register
@dataclass(frozen=True)
class StockReservationFailed:
    """Inventory could not hold the order's lines; nothing was reserved.
    Produced by inventory."""

    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "inventory"
    order_id: str
    reason: str
    shortages: tuple[Shortage, ...]


@register
@dataclass(frozen=True)
class StockReleased:
    """Inventory gave back the reservation of a rejected order. Produced by inventory."""

    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "inventory"
    order_id: str
    lines: tuple[Line, ...]


@register
@dataclass(frozen=True)
class PaymentRequested:
    """Orders saw stock for the order in its local view and asks for `amount`.
    Produced by orders."""

    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "orders"
    order_id: str
    amount: str
    currency: str
    payment_token: str


@register
@dataclass(frozen=True)
class PaymentAuthorized:
    """Payments holds an authorisation of `amount` for the order. Produced by payments."""

    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "payments"
    order_id: str
    payment_id: str
    amount: str


@register
@dataclass(frozen=True)
class PaymentDeclined:
    """Payments refused the order's payment; nothing is held. Produced by payments."""

    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "payments"
    order_id: str
    reason: str


@register
@dataclass(frozen=True)
class PaymentCaptured:
    """Payments took the money of a confirmed order. Produced by payments."""

    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "payments"
    order_id: str
    payment_id: str
    amount: str


@register
@dataclass(frozen=True)
class PaymentVoided:
    """Payments released the authorisation of a rejected order. Produced by payments."""

    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "payments"
    order_id: str
    payment_id: str
    amount: str


@register
@dataclass(frozen=True)
class OrderConfirmed:
    """Orders holds both a reservation and an authorisation: the order stands.
    Produced by orders."""

    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "orders"
    order_id: str
    total: str


@register
@dataclass(frozen=True)
class OrderRejected:
    """The order will not be fulfilled; `reason` says why. Produced by orders."""

    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "orders"
    order_id: str
    reason: str


@register
@dataclass(frozen=True)
class ShipmentScheduled:
    """Shipping will ship confirmed order `order_id` (worth `total`) as `shipment_id`.
    Produced by shipping; nobody but the dashboard subscribes."""

    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "shipping"
    shipment_id: str
    order_id: str
    total: str
