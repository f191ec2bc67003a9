"""Reads of shipping."""

from shipping.models import ShippedProduct, Shipment

DB = "shipping"
VIEW_LIMIT = 50


def shipping_view() -> dict:
    """Shipping's state for the dashboard ({section: {key: row}}): the newest scheduled
    shipments by order, and its product view."""
    shipments = {
        s.order_id: {"shipment_id": str(s.shipment_id), "status": s.status, "total": s.total}
        for s in Shipment.objects.using(DB).filter(status=Shipment.SCHEDULED).order_by("-id")[:VIEW_LIMIT]
    }
    products = {p.sku: {"name": p.name, "available": p.available, "version": p.version}
                for p in ShippedProduct.objects.using(DB).order_by("sku")[:VIEW_LIMIT]}
    return {"shipments": shipments, "products": products}
