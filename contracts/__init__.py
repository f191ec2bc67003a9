"""The event catalog and the envelope: the only thing contexts share. Standard library only."""

from contracts.catalog import (
    Customer,
    InventoryChanged,
    Line,
    OrderConfirmed,
    OrderRejected,
    OrderRequested,
    PaymentAuthorized,
    PaymentCaptured,
    PaymentDeclined,
    PaymentRequested,
    PaymentVoided,
    Shortage,
    StockReleased,
    StockReservationFailed,
    StockReserved,
)
from contracts.envelope import Envelope, build_envelope, parse_envelope
from contracts.registry import ContractError, event_class, event_types, register, validate_payload

__all__ = [
    "ContractError",
    "Customer",
    "Envelope",
    "InventoryChanged",
    "Line",
    "OrderConfirmed",
    "OrderRejected",
    "OrderRequested",
    "PaymentAuthorized",
    "PaymentCaptured",
    "PaymentDeclined",
    "PaymentRequested",
    "PaymentVoided",
    "Shortage",
    "StockReleased",
    "StockReservationFailed",
    "StockReserved",
    "build_envelope",
    "event_class",
    "event_types",
    "parse_envelope",
    "register",
    "validate_payload",
]
