"""Seed a demo catalog through inventory's services (so InventoryChanged fills orders' view)."""

from django.core.management.base import BaseCommand

from inventory.models import Product
from inventory.services import product_create

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


def seed_catalog(prefix: str = "DEMO") -> tuple[list[str], list[str]]:
    """Create the products of CATALOG under `prefix` that do not exist; (created, existing) SKUs."""
    created, existing = [], []
    for suffix, name, price, on_hand in CATALOG:
        sku = f"{prefix}-{suffix}"
        if Product.objects.using("inventory").filter(sku=sku).exists():
            existing.append(sku)
            continue
        product_create(sku=sku, name=name, price=price, on_hand=on_hand)
        created.append(sku)
    return created, existing


class Command(BaseCommand):
    help = "Create the demo products (idempotent). Each new product is published as InventoryChanged."

    def add_arguments(self, parser):
        parser.add_argument("--sku-prefix", default="DEMO", help="SKU prefix (default DEMO), e.g. for a test's own catalog")

    def handle(self, *args, sku_prefix="DEMO", **options):
        created, existing = seed_catalog(sku_prefix)
        self.stdout.write(f"seed_demo: {len(created)} product(s) created, {len(existing)} already there")
