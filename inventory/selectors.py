"""Reads of inventory."""

from inventory.models import Product

VIEW_LIMIT = 200  # the view travels in every receipt: keep it bounded


def stock_view() -> dict:
    """Inventory's state for the dashboard: {"stock": {sku: {...}}} (first VIEW_LIMIT SKUs)."""
    stock = {}
    for p in Product.objects.using("inventory").order_by("sku")[:VIEW_LIMIT]:
        stock[p.sku] = {
            "name": p.name, "price": f"{p.price:.2f}", "on_hand": p.on_hand,
            "reserved": p.reserved, "available": p.available, "version": p.version,
        }
    return {"stock": stock}
