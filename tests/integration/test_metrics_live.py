"""GET /metrics on a real Daphne: one scrape covers the Celery workers, the sweep and Daphne."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tests.support.flow import seed_products
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]
ROOT = Path(__file__).resolve().parents[2]


def scrape(daphne_url: str) -> tuple[str, dict[tuple[str, tuple], float]]:
    with urllib.request.urlopen(daphne_url + "/metrics", timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    return text, samples


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def place_order(daphne_url: str, sku: str, mode: str) -> str:
    body = {"customer": {"name": "Ada Lovelace", "email": "ada@example.com"}, "lines": [{"sku": sku, "qty": 1}],
            "payment_token": "tok_visa", "mode": mode}
    request = urllib.request.Request(daphne_url + "/api/orders/", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["order_id"]


def test_one_scrape_counts_deliveries_of_every_worker_and_the_order_outcomes_without_ids(
        stack, live_db, daphne_url, ws_origin):
    skus = seed_products({"A": ("10.00", 50)}, prefix="M")
    stack.wait_idle(60)
    _, before = scrape(daphne_url)
    event_order = place_order(daphne_url, skus["A"], "event")
    command_order = place_order(daphne_url, skus["A"], "command")
    stack.wait_idle(60)

    def counted():
        _, samples = scrape(daphne_url)
        grew = value(samples, "eventflow_orders_total", mode="event", outcome="confirmed") > \
            value(before, "eventflow_orders_total", mode="event", outcome="confirmed")
        return samples if grew else None

    samples = wait_for(counted, timeout=60, message="the confirmed event-driven order in /metrics")
    # Each of these is a delivery only a worker of that context makes: one scrape sums them all.
    for context, event_type in (("inventory", "OrderRequested"), ("payments", "PaymentRequested"),
                                ("orders", "StockReserved"), ("dashboard", "OrderConfirmed")):
        grown = value(samples, "eventflow_deliveries_total", context=context, event_type=event_type, outcome="ok") \
            - value(before, "eventflow_deliveries_total", context=context, event_type=event_type, outcome="ok")
        assert grown >= 1, (context, event_type)
    # Commands carried out by their owners count as deliveries too, and the command-driven order is decided.
    assert value(samples, "eventflow_deliveries_total", context="inventory", event_type="ReserveStock", outcome="ok") \
        > value(before, "eventflow_deliveries_total", context="inventory", event_type="ReserveStock", outcome="ok")
    assert value(samples, "eventflow_orders_total", mode="command", outcome="confirmed") \
        > value(before, "eventflow_orders_total", mode="command", outcome="confirmed")
    assert value(samples, "eventflow_handler_duration_seconds_count", context="inventory", event_type="OrderRequested") >= 1
    assert value(samples, "eventflow_publish_to_handled_seconds_count", context="orders") >= 1
    # The state of the bus, read at scrape time, per context.
    for context in ("orders", "inventory", "payments", "dashboard"):
        assert ("eventflow_queue_depth", (("context", context),)) in samples
        assert value(samples, "eventflow_consumer_state", context=context, state="online") == 1
        assert ("eventflow_outbox_unsent", (("context", context),)) in samples
        assert ("eventflow_dead_letters", (("context", context),)) in samples

    text, _ = scrape(daphne_url)
    for order_id in (event_order, command_order):
        assert order_id not in text
    # The sample Grafana dashboard asks only for series this scrape has.
    dashboard = (ROOT / "deploy" / "grafana-dashboard.json").read_text()
    asked = set(re.findall(r"eventflow_[a-z_]+", dashboard)) - {"eventflow"}
    assert asked and all(re.search(rf"^{name}[{{ ]", text, re.M) for name in asked), asked


def test_open_websockets_and_frames_are_counted(stack, live_db, daphne_url, ws_origin):
    _, before = scrape(daphne_url)
    url = daphne_url.replace("http", "ws", 1) + "/ws/events/"
    with connect(url, origin=ws_origin) as ws:
        ws.recv(timeout=30)  # the snapshot
        ws.recv(timeout=30)  # a paced frame: the queues message comes every second
        _, during = scrape(daphne_url)
        assert value(during, "eventflow_websocket_clients") == value(before, "eventflow_websocket_clients") + 1
        assert value(during, "eventflow_websocket_frames_sent_total") > value(before, "eventflow_websocket_frames_sent_total")
    wait_for(lambda: value(scrape(daphne_url)[1], "eventflow_websocket_clients") == value(before, "eventflow_websocket_clients"),
             timeout=30, message="the closed websocket no longer counted")
