"""Writes of shipping: schedule a shipment for a confirmed order, keep the product view."""

from __future__ import annotations

from django.db import transaction

from contracts import ShipmentScheduled
from eventbus import publish
from shipping.models import ShippedProduct, Shipment

DB = "shipping"


def shipment_schedule(*, order_id: str, total: str) -> Shipment:
    """Schedule the order's shipment and publish ShipmentScheduled; once per order."""
    with transaction.atomic(using=DB):
        shipment, created = Shipment.objects.using(DB).get_or_create(
            order_id=order_id, defaults={"status": Shipment.SCHEDULED, "total": total})
        if created:
            publish(ShipmentScheduled(shipment_id=str(shipment.shipment_id), order_id=order_id, total=total),
                    context=DB)
    return shipment


def shipment_refuse(*, order_id: str, reason: str) -> Shipment:
    """A rejected order is not shipped: noted once, nothing published."""
    with transaction.atomic(using=DB):
        shipment, _ = Shipment.objects.using(DB).get_or_create(
            order_id=order_id, defaults={"status": Shipment.NOT_SHIPPED, "reason": reason[:500]})
    return shipment


def product_apply(*, sku: str, name: str, available: int, version: int) -> None:
    """Keep the newest state of a product seen in InventoryChanged (an older version is ignored)."""
    with transaction.atomic(using=DB):
        newer = ShippedProduct.objects.using(DB).filter(sku=sku, version__lt=version)
        if not newer.update(name=name, available=available, version=version):
            ShippedProduct.objects.using(DB).get_or_create(
                sku=sku, defaults={"name": name, "available": available, "version": version})
