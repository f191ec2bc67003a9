"""Decoupling in a real browser: staff detaches shipping (its node greys out), orders are
confirmed all the same, staff attaches it, its replay lag falls to 0 and the shipments
panel lists the orders."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.e2e.test_lab_browser import SHOTS, log_in, product, staff_user  # noqa: F401  fixtures
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live, pytest.mark.browser]


def place(daphne_url: str, sku: str) -> str:
    body = json.dumps({"customer": {"name": "Ada", "email": "ada@example.com"}, "lines": [{"sku": sku, "qty": 1}],
                       "payment_token": "tok_visa", "mode": "event"}).encode()
    request = urllib.request.Request(f"{daphne_url}/api/orders/", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["order_id"]


def test_detach_shipping_place_orders_attach_and_watch_it_catch_up(context, stack, daphne_url,
                                                                    staff_user, product):  # noqa: F811
    from orders.models import Order

    SHOTS.mkdir(parents=True, exist_ok=True)
    log_in(context, daphne_url, staff_user)
    graph = context.new_page()
    graph.goto(f"{daphne_url}/")
    graph.wait_for_selector("#connection[data-state=live]")
    row = '#lab-contexts tr[data-context="shipping"]'
    node = 'svg#graph g.node[data-node="shipping"]'
    graph.wait_for_selector(f'{row}[data-attached="1"] button[data-link="detach"]')

    graph.click(f'{row} button[data-link="detach"]')
    graph.wait_for_selector(f'{node}.detached', timeout=30_000)
    graph.wait_for_selector(f'{row}[data-attached="0"]')

    orders = [place(daphne_url, product) for _ in range(3)]
    wait_for(lambda: Order.objects.using("orders").filter(order_id__in=orders, status=Order.CONFIRMED).count() == 3,
             timeout=90, message="the orders to be confirmed with shipping detached")
    graph.wait_for_selector(f'{node}[data-lag]:not([data-lag="0"])', timeout=30_000)
    graph.screenshot(path=str(SHOTS / "decoupling-1-shipping-detached.png"), full_page=True)
    assert graph.locator(f'#panel-shipping tr[data-order="{orders[0]}"]').count() == 0

    graph.click(f'{row} button[data-link="attach"]')
    graph.wait_for_selector(f'{row}[data-attached="1"]')
    graph.wait_for_selector(f'{node}:not(.detached)')
    graph.wait_for_selector(f'{row}[data-attached="1"][data-lag="0"] .subscription-state.attached', timeout=90_000)
    for order_id in orders:
        graph.wait_for_selector(f'#panel-shipping tr[data-order="{order_id}"]', timeout=60_000)
    graph.screenshot(path=str(SHOTS / "decoupling-2-shipping-caught-up.png"), full_page=True)
    assert not context.errors, context.errors
