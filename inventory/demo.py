"""The demo catalog: created by `seed_demo`, topped up again by "restock the demo catalog"
(the dashboard, the admin, `seed_demo --restock`, `simulate --restock`). Both go through
inventory's services, so every change is published as InventoryChanged."""

from __future__ import annotations

from inventory import services
from inventory.models import Product, StockAdjustment

# (suffix, name, price, on_hand): a few scarce ones make shortages easy to see.
CATALOG = [
    ("MUG", "Coffee mug", "12.00", 40),
    ("TEE", "T-shirt", "25.00", 30),
    ("HOODIE", "Hoodie", "55.00", 15),
    ("CAP", "Cap", "18.00", 25),
    ("STICKERS", "Sticker pack", "4.50", 200),
    ("POSTER", "Event storming poster", "15.00", 3),
    ("BOOK", "Event-driven systems (book)", "42.00", 5),
    ("LAMP", "Desk lamp", "89.00", 2),
    ("KEYBOARD", "Mechanical keyboard", "149.00", 4),
    ("HEADPHONES", "Headphones", "129.00", 8),
]
RESTOCK_REASON = "restock the demo catalog"


def seed_catalog(prefix: str = "DEMO") -> tuple[list[str], list[str]]:
    """Create the products of CATALOG under `prefix` that do not exist; (created, existing) SKUs."""
    created, existing = [], []
    for suffix, name, price, on_hand in CATALOG:
        sku = f"{prefix}-{suffix}"
        if Product.objects.using("inventory").filter(sku=sku).exists():
            existing.append(sku)
            continue
        services.product_create(sku=sku, name=name, price=price, on_hand=on_hand)
        created.append(sku)
    return created, existing


def demo_catalog_restock(*, prefix: str = "DEMO", skus: set[str] | None = None) -> dict:
    """Bring demo products' available stock back to their starting level: every product of the
    catalog under `prefix` (creating the ones missing), or only `skus` (any prefix; SKUs that
    are not demo products are left alone). {"created": [sku], "restocked": [{"sku", "added"}]}."""
    levels = {suffix: on_hand for suffix, _name, _price, on_hand in CATALOG}
    created = []
    if skus is None:
        created, existing = seed_catalog(prefix)
        skus = set(existing)
    restocked = []
    for product in Product.objects.using("inventory").filter(sku__in=skus).order_by("sku"):
        level = levels.get(product.sku.rsplit("-", 1)[-1])
        if level is not None and product.available < level:
            added = level - product.available
            services.stock_adjust(sku=product.sku, delta=added, reason=RESTOCK_REASON, kind=StockAdjustment.RESTOCK)
            restocked.append({"sku": product.sku, "added": added})
    return {"created": created, "restocked": restocked}


def describe(result: dict) -> str:
    units = sum(r["added"] for r in result["restocked"])
    text = f"{len(result['restocked'])} product(s) restocked ({units} units added)"
    if result["created"]:
        text += f", {len(result['created'])} created"
    return text if result["restocked"] or result["created"] else "every demo product was already at its starting stock"
