"""Reads of inventory."""

from dataclasses import asdict

from contracts import merge_lines, shortages_of
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
    wanted = merge_lines(lines)
    available = {p.sku: p.available for p in Product.objects.using("inventory").filter(sku__in=list(wanted))}
    return [asdict(shortage) for shortage in shortages_of(wanted, available)]
