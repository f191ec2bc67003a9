"""Shipping's subscriptions: message in -> service call. Nobody subscribes to shipping's
ShipmentScheduled but the dashboard, and no other context names shipping."""

from eventbus import register_local_view, register_view, subscribe
from shipping import selectors, services
from shipping.models import ShippedProduct


def on_order_confirmed(event, envelope):
    services.shipment_schedule(order_id=event.order_id, total=event.total)


def on_order_rejected(event, envelope):
    services.shipment_refuse(order_id=event.order_id, reason=event.reason)


def on_inventory_changed(event, envelope):
    services.product_apply(sku=event.sku, name=event.name, available=event.available, version=event.version)


subscribe("shipping", {
    "OrderConfirmed": on_order_confirmed,
    "OrderRejected": on_order_rejected,
    "InventoryChanged": on_inventory_changed,
})
register_view("shipping", selectors.shipping_view)
register_local_view("shipping", models=[ShippedProduct], fed_by=["InventoryChanged"])
