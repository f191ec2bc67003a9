"""GET /api/timeseries/ on a real Daphne after real orders: the charts' numbers come from the log."""

from __future__ import annotations

import json
import urllib.request

import pytest

from orders.models import Order
from tests.support.flow import seed_products
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]


def get(daphne_url: str, path: str) -> dict:
    with urllib.request.urlopen(daphne_url + path, timeout=30) as response:
        return json.load(response)


def test_the_last_five_minutes_show_events_handled_per_context_and_order_latency(stack, live_db, daphne_url):
    skus = seed_products({"A": ("3.00", 20)}, prefix="TS")
    body = {"customer": {"name": "Ada Lovelace", "email": "ada@example.com"}, "lines": [{"sku": skus["A"], "qty": 1}],
            "payment_token": "tok_visa", "mode": "event"}
    request = urllib.request.Request(daphne_url + "/api/orders/", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        order_id = json.load(response)["order_id"]
    wait_for(lambda: Order.objects.using("orders").get(order_id=order_id).status == Order.CONFIRMED, timeout=60,
             message="the order confirmed")
    stack.wait_idle(60)

    def with_the_order():
        series = get(daphne_url, "/api/timeseries/")
        return series if sum(series["order_latency_ms"]["orders"]) >= 1 else None

    series = wait_for(with_the_order, timeout=30, message="the decided order in the timeseries")
    buckets = series["window_seconds"] // series["bucket_seconds"]
    assert series["window_seconds"] == 300 and len(series["events_per_second"]) == buckets
    # The order alone is OrderRequested, StockReserved, PaymentRequested, PaymentAuthorized, OrderConfirmed, ...
    assert sum(series["events_per_second"]) * series["bucket_seconds"] >= 5
    for context in ("orders", "inventory", "payments", "dashboard"):
        assert sum(series["handled_per_second"][context]) > 0, context
        assert len(series["handled_per_second"][context]) == buckets
    pairs = [(p50, p95) for p50, p95 in zip(series["order_latency_ms"]["p50"], series["order_latency_ms"]["p95"])
             if p50 is not None]
    assert pairs and all(0 < p50 <= p95 for p50, p95 in pairs)
    # Buckets without a decided order have no latency rather than a made-up zero.
    assert any(v is None for v in series["order_latency_ms"]["p50"])
