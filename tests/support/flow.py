"""The order flow's invariants, checked over a test's own orders and products."""

from __future__ import annotations

import uuid
from collections import Counter

from inventory.models import Product, Reservation, StockAdjustment
from inventory.services import product_create
from orders.models import Order, ProductView
from payments.models import Payment
from tests.support.waiting import wait_for


def seed_products(spec: dict[str, tuple[str, int]], *, prefix: str = "T") -> dict[str, str]:
    """Create products {suffix: (price, on_hand)} and wait until orders' view shows them."""
    prefix = f"{prefix}{uuid.uuid4().hex[:8]}"
    skus = {suffix: f"{prefix}-{suffix}" for suffix in spec}
    for suffix, (price, on_hand) in spec.items():
        product_create(sku=skus[suffix], name=f"Product {suffix}", price=price, on_hand=on_hand)
    wait_for(lambda: ProductView.objects.using("orders").filter(sku__in=skus.values()).count() == len(skus),
             message="orders' view to show the new products")
    return skus


def compensated(order_ids) -> bool:
    """No reservation still held and no authorisation still open for these orders."""
    held = Reservation.objects.using("inventory").filter(order_id__in=order_ids, status=Reservation.HELD).count()
    authorized = Payment.objects.using("payments").filter(order_id__in=order_ids, status=Payment.AUTHORIZED).count()
    return held == 0 and authorized == 0


def views_equal(skus) -> bool:
    """Orders' local view equals inventory's stock for these SKUs."""
    stock = {p.sku: (p.name, p.price, p.on_hand, p.reserved, p.available, p.version)
             for p in Product.objects.using("inventory").filter(sku__in=skus)}
    view = {v.sku: (v.name, v.price, v.on_hand, v.reserved, v.available, v.version)
            for v in ProductView.objects.using("orders").filter(sku__in=skus)}
    return stock == view


def assert_flow_invariants(order_ids, skus, *, timeout: float = 120) -> Counter:
    """Every order decided and settled; stock conserved; views converge. Returns statuses.

    - every order is CONFIRMED or REJECTED;
    - every confirmed order has exactly one CAPTURED payment equal to its total and a
      COMMITTED reservation; no rejected order keeps a reservation or an authorisation;
    - per SKU, on_hand + reserved + sold == seeded amount + adjustments;
    - orders' local view equals inventory's stock once the queues are empty.
    """
    order_ids = {str(o) for o in order_ids}
    orders = {str(o.order_id): o for o in Order.objects.using("orders").filter(order_id__in=order_ids)}
    assert set(orders) == order_ids, f"orders missing: {sorted(order_ids - set(orders))[:5]}"
    statuses = Counter(o.status for o in orders.values())
    assert set(statuses) <= {Order.CONFIRMED, Order.REJECTED}, statuses
    wait_for(lambda: compensated(order_ids), timeout=timeout,
             message="every reservation committed or released, every authorisation settled")
    wait_for(lambda: views_equal(skus), timeout=timeout, message="orders' view to equal inventory's stock")

    payments = {p.order_id: p for p in Payment.objects.using("payments").filter(order_id__in=order_ids)}
    reservations = {r.order_id: r for r in Reservation.objects.using("inventory").filter(order_id__in=order_ids)}
    sold_by_orders: Counter = Counter()
    for order_id, order in orders.items():
        payment, reservation = payments.get(order_id), reservations.get(order_id)
        if order.status == Order.CONFIRMED:
            assert payment is not None and payment.status == Payment.CAPTURED and payment.amount == order.total, order_id
            assert reservation is not None and reservation.status == Reservation.COMMITTED, order_id
            for line in order.lines.all():
                sold_by_orders[line.sku] += line.qty
        else:
            assert payment is None or payment.status in (Payment.DECLINED, Payment.VOIDED), order_id
            assert reservation is None or reservation.status in (Reservation.RELEASED, Reservation.FAILED), order_id

    sold: Counter = Counter()
    for reservation in Reservation.objects.using("inventory").filter(status=Reservation.COMMITTED):
        for line in reservation.lines:
            if line["sku"] in skus:
                sold[line["sku"]] += line["qty"]
    for sku in skus:
        assert sold[sku] == sold_by_orders[sku], (sku, sold[sku], sold_by_orders[sku])
    adjustments: Counter = Counter()
    for adjustment in StockAdjustment.objects.using("inventory").filter(sku__in=skus):
        adjustments[adjustment.sku] += adjustment.delta  # the initial stock is recorded as one
    for product in Product.objects.using("inventory").filter(sku__in=skus):
        # every reservation of these orders is settled, so nothing stays reserved
        assert product.reserved == 0, product.sku
        assert product.on_hand + product.reserved + sold[product.sku] == adjustments[product.sku], product.sku
    return statuses
