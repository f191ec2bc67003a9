"""The comparison of the lab, read from the dashboard's log: the hop and message counts
of each mode match the design (dashboard/metrics.py)."""

import json

import pytest

from dashboard.metrics import comparison, order_metrics_of
from tests.support.flow import seed_products
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]


def place(client, sku, mode):
    body = {"customer": {"name": "Ada", "email": "ada@example.com"}, "lines": [{"sku": sku, "qty": 1}],
            "payment_token": "tok_visa", "mode": mode}
    response = client.post("/api/orders/", data=json.dumps(body), content_type="application/json")
    assert response.status_code in (200, 202), response.content
    return response.json()


def settled_metrics(stack, correlation_id):
    stack.wait_idle(timeout=90)  # every delivery and receipt logged
    return wait_for(lambda: order_metrics_of(correlation_id), message="the order's metrics")


def test_event_and_command_modes_count_as_designed(stack, live_db, client):
    from dashboard.log_queries import last_seq

    mark = last_seq()
    sku = seed_products({"A": ("10.00", 50)})["A"]
    by_events = settled_metrics(stack, place(client, sku, "event")["correlation_id"])
    assert by_events["mode"] == "event" and by_events["status"] == "CONFIRMED"
    # OrderRequested to orders and inventory, PaymentRequested to payments, StockReserved,
    # InventoryChanged (reserve), PaymentAuthorized and InventoryChanged (commit) to orders,
    # OrderConfirmed to inventory and payments: 9 deliveries; shipping takes OrderConfirmed
    # and both InventoryChanged: 12, no command, no wait.
    assert by_events["messages"] == 12 and by_events["commands"] == 0
    assert by_events["synchronous_waits"] == []
    assert by_events["critical_chain"][0] == "OrderRequested" and by_events["critical_chain"][-1] == "OrderConfirmed"
    assert by_events["hops"] in (2, 3) and by_events["hops"] == len(by_events["critical_chain"]) - 1

    by_commands = settled_metrics(stack, place(client, sku, "command")["correlation_id"])
    assert by_commands["mode"] == "command" and by_commands["status"] == "CONFIRMED"
    assert [w["command"] for w in by_commands["synchronous_waits"]] == ["ReserveStock", "AuthorizePayment", "CommitStock", "CapturePayment"]
    assert all(w["outcome"] == "ok" and w["wait_ms"] is not None for w in by_commands["synchronous_waits"])
    # 4 commands + 4 replies, plus the facts the owners still publish: StockReserved and two
    # InventoryChanged and PaymentAuthorized to orders, OrderConfirmed to inventory and payments,
    # and shipping's three (OrderConfirmed, both InventoryChanged).
    assert by_commands["commands"] == 4 and by_commands["replies"] == 4 and by_commands["deliveries"] == 9
    assert by_commands["messages"] == 17
    assert by_commands["hops"] == 8

    table = comparison(after_seq=mark)
    assert table["modes"]["event"]["all"]["placed"] == 1 and table["modes"]["command"]["all"]["placed"] == 1
    assert table["modes"]["command"]["all"]["hops_per_order"] == 8
    assert table["modes"]["event"]["all"]["sync_waits_per_order"] == 0
