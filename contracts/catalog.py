"""The event catalog, version 1.

Each event states a fact in the past tense. It is a frozen dataclass whose name
is its `event_type`; `producer` names the only context that may publish it.
Money travels as a decimal string ("12.50") so no float ever rounds it; the
currency is ISO 4217. No payment card number exists anywhere: payments use test
tokens (`tok_visa`, `tok_declined`, `tok_insufficient_funds`).
"""

from __future__ import annotations

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
