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


def stock_shortages(lines) -> list[dict]:
    """Lines ({sku, qty} objects) that stock cannot cover right now: [{"sku", "requested", "available"}]."""
    wanted: dict[str, int] = {}
    for line in lines:
        wanted[line.sku] = wanted.get(line.sku, 0) + line.qty
    products = {p.sku: p for p in Product.objects.using("inventory").filter(sku__in=list(wanted))}
    return [
        {"sku": sku, "requested": qty, "available": products[sku].available if sku in products else 0}
        for sku, qty in sorted(wanted.items())
        if sku not in products or products[sku].available < qty
    ]
