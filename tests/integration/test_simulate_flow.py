"""200 simulated orders on the real stack: the flow's invariants hold over the test's own catalog."""

from __future__ import annotations

import io
import uuid
from collections import Counter

import pytest
from django.core.management import call_command

from inventory.models import Product, StockAdjustment
from inventory.services import stock_adjust
from orders.models import Order, OrderLine, ProductView
from tests.support.flow import assert_flow_invariants
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]


def test_simulated_orders_keep_every_invariant(stack, live_db):
    prefix = f"SIM{uuid.uuid4().hex[:8]}"
    call_command("seed_demo", sku_prefix=prefix, stdout=io.StringIO())
    products = {p.sku: p for p in Product.objects.using("inventory").filter(sku__startswith=f"{prefix}-")}
    skus = sorted(products)
    assert len(skus) >= 8
    stock_adjust(sku=skus[0], delta=5, reason="restock during the test", kind=StockAdjustment.RESTOCK)
    wait_for(lambda: ProductView.objects.using("orders").filter(sku__in=skus, version=1).count() == len(skus) - 1
             and ProductView.objects.using("orders").filter(sku=skus[0], version=2).exists(),
             message="orders' view of the seeded catalog")

    out = io.StringIO()
    call_command("simulate", orders=200, rate=0, wait=180, sku_prefix=f"{prefix}-", seed=3, stdout=out)
    report = out.getvalue()
    print(report)  # shown with -s: the summary a person would read
    assert "placed 200/200 (100%)" in report and "still pending: 0" in report, report

    order_ids = {str(o) for o in OrderLine.objects.using("orders").filter(sku__in=skus).values_list("order__order_id", flat=True)}
    assert len(order_ids) == 200
    orders = {str(o.order_id): o for o in Order.objects.using("orders").filter(order_id__in=order_ids)}
    statuses = Counter(o.status for o in orders.values())
    assert set(statuses) <= {"CONFIRMED", "REJECTED"}, statuses
    assert statuses["CONFIRMED"] > 0 and statuses["REJECTED"] > 0, statuses
    reasons = {o.reason.split(":")[0] for o in orders.values() if o.status == "REJECTED"}
    assert "payment declined" in reasons and any(r.startswith("out of stock") for r in reasons), reasons

    assert_flow_invariants(order_ids, skus)
    # Leave the stack as we found it: the dashboard still logs a few thousand events and
    # receipts of this burst (about a minute here), which would slow the tests that follow.
    stack.wait_idle(timeout=240)
