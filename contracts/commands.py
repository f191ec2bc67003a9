"""The command catalog: what the command-driven mode of the comparison lab sends.

A command is imperative and has one `owner`, the context that carries it out
through its own services (single writer). The sender waits for the reply; a
command that arrives after its sender gave up (`expires_at`) is not carried out.
Replies are plain objects: {"ok": bool, "reason": str, ...}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from contracts.catalog import Line
from contracts.registry import register_command


@register_command
@dataclass(frozen=True)
class ReserveStock:
    """Hold `lines` for `order_id`, all or nothing. Reply: ok, or reason + shortages."""

    schema_version: ClassVar[int] = 1
    owner: ClassVar[str] = "inventory"
    order_id: str
    lines: tuple[Line, ...]


@register_command
@dataclass(frozen=True)
class ReleaseStock:
    """Give back the reservation of `order_id`, if any (idempotent)."""

    schema_version: ClassVar[int] = 1
    owner: ClassVar[str] = "inventory"
    order_id: str


@register_command
@dataclass(frozen=True)
class CommitStock:
    """Turn the reservation of `order_id` into a sale."""

    schema_version: ClassVar[int] = 1
    owner: ClassVar[str] = "inventory"
    order_id: str


@register_command
@dataclass(frozen=True)
class CheckStock:
    """A query, not a change: is there stock for `lines` now? Reply: ok, shortages."""

    schema_version: ClassVar[int] = 1
    owner: ClassVar[str] = "inventory"
    lines: tuple[Line, ...]


@register_command
@dataclass(frozen=True)
class AuthorizePayment:
    """Authorise `amount` for `order_id` with a test token. Reply: ok + payment_id, or reason."""

    schema_version: ClassVar[int] = 1
    owner: ClassVar[str] = "payments"
    order_id: str
    amount: str
    currency: str
    payment_token: str


@register_command
@dataclass(frozen=True)
class CapturePayment:
    """Take the authorised money of `order_id`."""

    schema_version: ClassVar[int] = 1
    owner: ClassVar[str] = "payments"
    order_id: str


@register_command
@dataclass(frozen=True)
class VoidPayment:
    """Release the authorisation of `order_id`, if any (idempotent)."""

    schema_version: ClassVar[int] = 1
    owner: ClassVar[str] = "payments"
    order_id: str


@register_command
@dataclass(frozen=True)
class RestockDemoCatalog:
    """Bring every product of the demo catalog under `sku_prefix` back to its starting stock
    (inventory publishes InventoryChanged for each). Sent by staff from the dashboard and by
    `simulate --restock`. Reply: ok + created, restocked [{sku, added}]."""

    schema_version: ClassVar[int] = 1
    owner: ClassVar[str] = "inventory"
    senders: ClassVar[tuple[str, ...]] = ("dashboard", "orders")
    sku_prefix: str
