"""Place a realistic stream of orders through order_place (like the API), then report."""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from decimal import Decimal
from types import SimpleNamespace

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from contracts import RestockDemoCatalog
from eventbus import CommandFailed, send_command
from orders.models import Order
from orders.selectors import product_list, reason_category
from orders.services import order_place
from orders.validation import MAX_QTY, OrderInvalid

# What this simulation calls a large order. Whether payments declines it for tok_insufficient_funds
# is payments' rule (EVENTFLOW_INSUFFICIENT_FUNDS_LIMIT, 100.00 by default), which orders does not know.
LARGE_ORDER = Decimal("150.00")
NAMES = ["Ada Lovelace", "Grace Hopper", "Alan Turing", "Edsger Dijkstra", "Barbara Liskov",
         "Ken Thompson", "Margaret Hamilton", "Donald Knuth", "Frances Allen", "John Backus"]


def plan_order(rng: random.Random, products) -> tuple[list[dict], str]:
    """(lines, token): mostly tok_visa, some declined cards, some large insufficient-funds
    orders, some quantities beyond the stock the local view shows."""
    roll = rng.random()
    if roll < 0.10:
        token = "tok_declined"
    elif roll < 0.20:
        token = "tok_insufficient_funds"
        # A large order, preferably on a product with stock so that the payment is what decides it.
        large = [(p, min(MAX_QTY, math.ceil(LARGE_ORDER / p.price))) for p in products if p.price > 0]
        if large:
            in_stock = [(p, qty) for p, qty in large if p.available >= qty]
            product, qty = rng.choice(in_stock) if in_stock else max(large, key=lambda pq: pq[0].price)
            return [{"sku": product.sku, "qty": qty}], token
    elif roll < 0.27:
        product = rng.choice(products)
        return [{"sku": product.sku, "qty": min(MAX_QTY, max(product.available, 0) + rng.randint(1, 3))}], "tok_visa"
    else:
        token = "tok_visa"
    chosen = rng.sample(products, k=min(len(products), rng.choice([1, 1, 1, 2, 2, 3])))
    return [{"sku": p.sku, "qty": rng.choice([1, 1, 1, 2, 3])} for p in chosen], token


def forecast_dry(products, orders: int, seed: int | None) -> list[str]:
    """The SKUs this run would leave at 0 available (or finds there already): the same mix of
    orders played against a copy of the view, where an approved card takes the stock it asks for."""
    stock = [SimpleNamespace(sku=p.sku, price=p.price, available=p.available) for p in products]
    by_sku = {p.sku: p for p in stock}
    rng = random.Random(seed)
    for i in range(orders):
        lines, token = plan_order(rng, stock)
        rng.choice(NAMES)  # keep in step with the real run's draws
        if token == "tok_visa" and all(by_sku[line["sku"]].available >= line["qty"] for line in lines):
            for line in lines:
                by_sku[line["sku"]].available -= line["qty"]
    return sorted(p.sku for p in stock if p.available <= 0)


def statuses(order_ids: list[str]) -> dict[str, tuple[str, str]]:
    result = {}
    for start in range(0, len(order_ids), 500):
        chunk = order_ids[start:start + 500]
        for order_id, status, reason in Order.objects.using("orders").filter(order_id__in=chunk).values_list(
            "order_id", "status", "reason"
        ):
            result[str(order_id)] = (status, reason)
    return result


class Command(BaseCommand):
    help = "Place N orders at R per second through the same service as the API, wait for them, summarise."

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=50, help="how many orders (default 50)")
        parser.add_argument("--rate", type=float, default=5.0, help="orders per second; 0 = full speed (default 5)")
        parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for decisions (default 120)")
        parser.add_argument("--skus", default="", help="comma-separated SKUs to order from (default: all)")
        parser.add_argument("--sku-prefix", default="", help="only SKUs starting with this prefix")
        parser.add_argument("--seed", type=int, default=None, help="random seed, for a repeatable mix")
        parser.add_argument("--restock", action="store_true",
                            help="first ask inventory to restock the demo catalog (under --sku-prefix, default DEMO)")

    def restock(self, prefix: str, catalog) -> None:
        """Inventory restocks through its own services (a command it owns); then wait for orders' view."""
        before = {p.sku: p.available for p in catalog()}
        try:
            reply = send_command(RestockDemoCatalog(sku_prefix=prefix), sender="orders",
                                 timeout=max(settings.EVENTFLOW_COMMAND_TIMEOUT, 10.0)).reply
        except CommandFailed as exc:  # no answer in time, or the broker failed
            raise CommandError(f"restock not done: {exc}") from exc
        if not reply.get("ok"):
            raise CommandError(f"restock not done: {reply.get('reason') or reply.get('outcome')}")
        added = {r["sku"]: r["added"] for r in reply.get("restocked", [])}
        self.stdout.write(f"restocked {len(added)} product(s) of {prefix}-*, {sum(added.values())} units; "
                          f"{len(reply.get('created', []))} created")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # InventoryChanged reaches orders' view in a moment
            view = {p.sku: p.available for p in catalog()}
            if all(view.get(sku, 0) >= before.get(sku, 0) + n for sku, n in added.items()):
                return
            time.sleep(0.2)
        self.stderr.write("restock: orders' view has not caught up yet; going on")

    def handle(self, *args, orders=50, rate=5.0, wait=120.0, skus="", sku_prefix="", seed=None, restock=False,
               **options):
        if orders < 1 or rate < 0 or wait < 0:
            raise CommandError("--orders must be at least 1; --rate and --wait cannot be negative")
        wanted = {s.strip() for s in skus.split(",") if s.strip()}

        def catalog():
            return [p for p in product_list() if (not wanted or p.sku in wanted) and p.sku.startswith(sku_prefix)]

        if restock:
            self.restock(sku_prefix.rstrip("-") or "DEMO", catalog)
        products = catalog()
        if not products:
            raise CommandError("no products in orders' view to order from (run seed_demo, check --skus/--sku-prefix)")
        dry = forecast_dry(products, orders, seed)
        if dry:
            self.stderr.write(
                f"warning: this run would leave {len(dry)} of {len(products)} products at 0 available "
                f"({', '.join(dry[:6])}{', ...' if len(dry) > 6 else ''}); orders for them are rejected. "
                + ("Even the demo catalog's starting stock is not enough for this many orders." if restock else
                   "Restock first: simulate --restock, or manage.py seed_demo --restock."))
        rng = random.Random(seed)
        step = max(1, orders // 10)
        placed, invalid = [], 0
        started = time.monotonic()
        for i in range(orders):
            if i and i % 10 == 0:
                products = catalog() or products  # follow the view's availability as it changes
            lines, token = plan_order(rng, products)
            try:
                placed.append(order_place(customer_name=rng.choice(NAMES), customer_email=f"customer{i}@example.com",
                                          lines=lines, payment_token=token).order_id)
            except OrderInvalid as exc:
                invalid += 1
                self.stderr.write(f"order {i + 1} refused: {exc}")
            if (i + 1) % step == 0 or i + 1 == orders:
                self.stdout.write(f"placed {i + 1}/{orders} ({100 * (i + 1) // orders}%)")
            if rate > 0:
                time.sleep(max(0.0, started + (i + 1) / rate - time.monotonic()))
        elapsed = time.monotonic() - started
        self.stdout.write(f"{len(placed)} orders placed in {elapsed:.1f}s ({len(placed) / max(elapsed, 1e-6):.1f}/s); waiting up to {wait:.0f}s")

        deadline = time.monotonic() + wait
        while True:
            seen = statuses(placed)
            pending = sum(1 for status, _ in seen.values() if status == Order.PENDING) + len(placed) - len(seen)
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(0.5)
        confirmed = sum(1 for status, _ in seen.values() if status == Order.CONFIRMED)
        rejected = Counter(reason_category(reason) for status, reason in seen.values() if status == Order.REJECTED)
        self.stdout.write(f"decided in {time.monotonic() - started:.1f}s")
        self.stdout.write(f"confirmed: {confirmed}")
        self.stdout.write(f"rejected: {sum(rejected.values())}")
        for reason, count in rejected.most_common():
            self.stdout.write(f"  {reason}: {count}")
        self.stdout.write(f"still pending: {pending}")
        if invalid:
            self.stdout.write(f"refused as invalid: {invalid}")
