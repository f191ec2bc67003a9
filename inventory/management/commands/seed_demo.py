"""Seed a demo catalog through inventory's services (so InventoryChanged fills orders' view)."""

from django.core.management.base import BaseCommand

from inventory.demo import CATALOG, demo_catalog_restock, describe, seed_catalog  # noqa: F401 (CATALOG: re-exported)


class Command(BaseCommand):
    help = ("Create the demo products (idempotent). Each new product is published as InventoryChanged. "
            "--restock also brings each one's available stock back to its starting level.")

    def add_arguments(self, parser):
        parser.add_argument("--sku-prefix", default="DEMO", help="SKU prefix (default DEMO), e.g. for a test's own catalog")
        parser.add_argument("--restock", action="store_true",
                            help="top every demo product up to its starting stock (a stock restock, published)")

    def handle(self, *args, sku_prefix="DEMO", restock=False, **options):
        if restock:
            self.stdout.write(f"seed_demo: {describe(demo_catalog_restock(prefix=sku_prefix))}")
            return
        created, existing = seed_catalog(sku_prefix)
        self.stdout.write(f"seed_demo: {len(created)} product(s) created, {len(existing)} already there")
