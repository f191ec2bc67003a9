"""The order form on the real stack when a context does not answer: the error, and a link to the trace."""

from __future__ import annotations

import re

import pytest

from eventbus import control
from orders.models import Order
from tests.support.flow import seed_products

pytestmark = [pytest.mark.live]


@pytest.fixture
def inventory_paused(stack):
    control.pause("inventory")
    yield
    control.resume("inventory")
    stack.wait_idle(60)


def test_a_command_order_that_timed_out_shows_why_and_links_to_its_trace(stack, live_db, client, inventory_paused):
    skus = seed_products({"A": ("6.00", 10)}, prefix="FORM")
    response = client.post("/orders/new/", {"customer_name": "Ada Lovelace", "customer_email": "ada@example.com",
                                            "payment_token": "tok_visa", "mode": "command", f"qty__{skus['A']}": "1"})
    assert response.status_code == 504
    html = response.content.decode()
    assert "inventory did not answer ReserveStock within" in html
    link = re.search(r'<a href="/orders/([0-9a-f-]{36})/#token=([\w-]+)" id="order-trace-link">', html)
    assert link, html
    order_id, token = link.groups()
    assert Order.objects.using("orders").get(order_id=order_id).status == Order.REJECTED
    # The token in the link opens that one order in full, as after a placed order.
    detail = client.get(f"/api/orders/{order_id}/", HTTP_X_ORDER_TOKEN=token).json()
    assert detail["customer"]["email"] == "ada@example.com"
