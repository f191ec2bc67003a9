"""The comparison lab on the real stack: a context offline, event-driven against
command-driven orders, and the hybrid remote stock check."""

from __future__ import annotations

import json
import time

import pytest
from django.conf import settings

from eventbus import control
from eventbus.flags import set_flag
from eventbus.models import OutboxMessage
from inventory.models import Reservation
from orders.models import Order
from payments.models import Payment
from tests.support.flow import assert_flow_invariants, compensated, seed_products
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]


def order_body(lines: dict[str, int], *, mode: str, token: str = "tok_visa") -> dict:
    return {"customer": {"name": "Ada", "email": "ada@example.com"},
            "lines": [{"sku": sku, "qty": qty} for sku, qty in lines.items()],
            "payment_token": token, "mode": mode}


def post_order(client, body: dict):
    return client.post("/api/orders/", data=json.dumps(body), content_type="application/json")


def statuses(order_ids) -> dict[str, str]:
    return dict(Order.objects.using("orders").filter(order_id__in=order_ids).values_list("order_id", "status"))


@pytest.fixture
def resume_everything():
    yield
    for context in ("orders", "inventory", "payments", "dashboard"):
        if control.consumer_status(max_age=0)[context] == "paused":
            control.resume(context)
    set_flag("stock_check", "local")


def test_event_mode_orders_wait_for_a_paused_inventory_and_complete_after_resume(stack, live_db, client, resume_everything):
    skus = seed_products({"A": ("10.00", 500), "B": ("4.00", 500)})
    control.pause("inventory")
    assert control.consumer_status(max_age=0)["inventory"] == "paused"
    depth_before = stack.broker().llen("inventory")
    order_ids = []
    for i in range(20):  # accepted (202) while inventory is offline: nobody waits for it
        response = post_order(client, order_body({skus["A"]: 1 + i % 3, skus["B"]: 2}, mode="event"))
        assert response.status_code == 202, response.content
        order_ids.append(response.json()["order_id"])
    wait_for(lambda: stack.broker().llen("inventory") >= depth_before + 20, message="20 OrderRequested waiting for inventory")
    # payments authorises meanwhile, but no order can be confirmed without its reservation
    wait_for(lambda: Payment.objects.using("payments").filter(order_id__in=order_ids).count() == 20,
             message="payments to authorise while inventory is offline")
    assert set(statuses(order_ids).values()) == {Order.PENDING}
    control.resume("inventory")
    wait_for(lambda: set(statuses(order_ids).values()) == {Order.CONFIRMED}, timeout=90,
             message="every order confirmed after inventory is back")
    assert_flow_invariants(order_ids, set(skus.values()))


def test_command_mode_orders_fail_within_the_timeout_while_inventory_is_paused(stack, live_db, client, resume_everything):
    skus = seed_products({"A": ("10.00", 50)})
    timeout = settings.EVENTFLOW_COMMAND_TIMEOUT
    control.pause("inventory")
    order_ids = []
    for _ in range(3):
        started = time.monotonic()
        response = post_order(client, order_body({skus["A"]: 2}, mode="command"))
        elapsed = time.monotonic() - started
        assert response.status_code == 504, response.content
        body = response.json()
        assert "inventory did not answer ReserveStock within" in body["errors"]["mode"][0]
        assert "nothing is kept" in body["errors"]["mode"][0]
        assert elapsed >= timeout  # it waited the whole timeout before giving up
        order_ids.append(body["order_id"])
    assert set(statuses(order_ids).values()) == {Order.REJECTED}
    control.resume("inventory")
    stack.wait_idle(timeout=60)
    # The expired ReserveStock commands never took effect: no stock held, nothing authorised.
    assert not Reservation.objects.using("inventory").filter(order_id__in=order_ids).exclude(status=Reservation.RELEASED).exists()
    assert not Reservation.objects.using("inventory").filter(order_id__in=order_ids, status=Reservation.RELEASED).exists()
    assert not Payment.objects.using("payments").filter(order_id__in=order_ids).exists()
    assert_flow_invariants(order_ids, set(skus.values()))


def test_command_mode_with_payments_paused_releases_the_reservation(stack, live_db, client, resume_everything):
    skus = seed_products({"A": ("10.00", 50)})
    control.pause("payments")
    response = post_order(client, order_body({skus["A"]: 3}, mode="command"))
    assert response.status_code == 504
    order_id = response.json()["order_id"]
    assert "payments did not answer AuthorizePayment" in response.json()["errors"]["mode"][0]
    # The reservation that succeeded was compensated at once, by command.
    assert Reservation.objects.using("inventory").get(order_id=order_id).status == Reservation.RELEASED
    control.resume("payments")
    stack.wait_idle(timeout=60)
    assert not Payment.objects.using("payments").filter(order_id=order_id).exclude(status=Payment.VOIDED).exists()
    assert_flow_invariants([order_id], set(skus.values()))


def test_command_mode_confirms_and_declines_synchronously(stack, live_db, client):
    skus = seed_products({"A": ("10.00", 50)})
    response = post_order(client, order_body({skus["A"]: 2}, mode="command"))
    assert response.status_code == 200, response.content
    confirmed = response.json()
    assert confirmed["status"] == "CONFIRMED" and confirmed["mode"] == "command"
    # Decided before the answer: the owners have already done their part.
    assert Reservation.objects.using("inventory").get(order_id=confirmed["order_id"]).status == Reservation.COMMITTED
    assert Payment.objects.using("payments").get(order_id=confirmed["order_id"]).status == Payment.CAPTURED

    response = post_order(client, order_body({skus["A"]: 1}, mode="command", token="tok_declined"))
    declined = response.json()
    assert response.status_code == 200 and declined["status"] == "REJECTED"
    assert declined["reason"].startswith("payment declined")
    assert Reservation.objects.using("inventory").get(order_id=declined["order_id"]).status == Reservation.RELEASED
    stack.wait_idle(timeout=60)
    assert_flow_invariants([confirmed["order_id"], declined["order_id"]], set(skus.values()))


def test_the_hybrid_stock_check_asks_inventory_and_fails_when_it_is_offline(stack, live_db, client, resume_everything):
    skus = seed_products({"A": ("10.00", 5)})
    set_flag("stock_check", "remote")
    response = post_order(client, order_body({skus["A"]: 9}, mode="event"))
    assert response.status_code == 202
    order_id = response.json()["order_id"]
    order = Order.objects.using("orders").get(order_id=order_id)
    assert order.stock_check == "remote" and "requested 9, available 5" in order.view_shortage
    wait_for(lambda: statuses([order_id]).get(order.order_id) == Order.REJECTED, message="the order rejected")
    assert Order.objects.using("orders").get(order_id=order_id).reason.startswith("out of stock (inventory query)")

    control.pause("inventory")
    outbox_before = OutboxMessage.objects.using("orders").count()
    response = post_order(client, order_body({skus["A"]: 1}, mode="event"))
    assert response.status_code == 504
    assert "inventory did not answer CheckStock" in response.json()["errors"]["stock_check"][0]
    assert OutboxMessage.objects.using("orders").count() == outbox_before  # nothing published
    wait_for(lambda: compensated([order_id]), message="the rejected order settled")
