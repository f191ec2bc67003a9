"""The comparison lab in a real browser: a staff user takes inventory offline from the
dashboard, places an event-driven and a command-driven order through the form, brings
inventory back, and reads the outcome in the comparison panel and the order traces."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.support.browser import get_json, new_context
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live, pytest.mark.browser]

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSWORD = "lab-staff-password-1"


@pytest.fixture
def staff_user(live_db):
    from django.contrib.auth import get_user_model

    username = f"lab-{uuid.uuid4().hex[:8]}"
    get_user_model().objects.create_user(username=username, password=PASSWORD, is_staff=True)
    return username


@pytest.fixture
def product(stack, live_db, daphne_url):
    from inventory.services import product_create

    sku = f"LAB-{uuid.uuid4().hex[:10].upper()}"
    product_create(sku=sku, name="Lab widget", price="4.00", on_hand=50)
    wait_for(lambda: any(p["sku"] == sku for p in get_json(f"{daphne_url}/api/products/")["products"]),
             message=f"{sku} in orders' product view")
    return sku


def log_in(ctx, daphne_url: str, username: str) -> None:
    page = ctx.new_page()
    page.goto(f"{daphne_url}/admin/login/?next=/admin/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click('input[type="submit"]')
    page.wait_for_url("**/admin/")
    page.close()


def fill_order(ctx, daphne_url: str, sku: str, *, name: str, mode: str):
    form = ctx.new_page()
    form.goto(f"{daphne_url}/orders/new/")
    form.fill(f'input[name="qty__{sku}"]', "1")
    form.fill('input[name="customer_name"]', name)
    form.fill('input[name="customer_email"]', "lab@example.com")
    form.select_option('select[name="payment_token"]', "tok_visa")
    form.select_option('select[name="mode"]', mode)
    return form


def figure(page, mode: str, row: str, field: str) -> int:
    value = page.get_attribute(f'#comparison-table tr[data-mode="{mode}"][data-row="{row}"] td[data-field="{field}"]',
                               "data-value")
    return int(value or 0)


def test_pause_inventory_from_the_dashboard_and_compare_events_with_commands(browser, context, stack, daphne_url,
                                                                             staff_user, product):
    from eventbus import control

    # Anonymous: the state, no switch, a hint to log in.
    anonymous = new_context(browser)
    try:
        page = anonymous.new_page()
        page.goto(f"{daphne_url}/")
        page.wait_for_selector('#lab-contexts tr[data-context="inventory"][data-consumer="online"]')
        assert page.locator("#lab button").count() == 0
        assert "/admin/" in page.get_attribute("#lab-hint a", "href")
    finally:
        anonymous.close()

    log_in(context, daphne_url, staff_user)
    graph = context.new_page()
    graph.goto(f"{daphne_url}/")
    graph.wait_for_selector("#connection[data-state=live]")
    inventory = '#lab-contexts tr[data-context="inventory"]'
    graph.wait_for_selector(f'{inventory}[data-consumer="online"]')
    graph.wait_for_selector('#comparison-table tr[data-mode="command"][data-row="while_offline"]')
    before = {(m, r, f): figure(graph, m, r, f) for m in ("event", "command") for r in ("all", "while_offline")
              for f in ("placed", "confirmed", "failed")}
    # Commands, events and queries are drawn differently, and the legend says so.
    assert graph.locator('#graph path.edge.command[data-lane="orders->inventory|command"]').count() == 1
    assert graph.locator('#graph path.edge.query[data-lane="orders->inventory|query"]').count() == 1
    assert "dashed" in graph.text_content("#legend") and "dotted" in graph.text_content("#legend")

    # The stock-check switch: a remote query to inventory, then back to orders' local view.
    from eventbus import flags

    try:
        graph.wait_for_selector('#lab-stock-check strong[data-value="local"]')
        graph.click("#stock-check-toggle")
        graph.wait_for_selector('#lab-stock-check strong[data-value="remote"]')
        assert get_json(f"{daphne_url}/api/flags/stock_check")["value"] == "remote"
        graph.click("#stock-check-toggle")
        graph.wait_for_selector('#lab-stock-check strong[data-value="local"]')
        assert get_json(f"{daphne_url}/api/flags/stock_check")["value"] == "local"
    finally:
        flags.set_flag("stock_check", "local")

    tag = uuid.uuid4().hex[:6]
    try:
        graph.click(f"{inventory} button[data-action=pause]")
        graph.wait_for_selector(f'{inventory}[data-consumer="paused"]')
        graph.wait_for_selector('#graph [data-node="inventory"][data-online="paused"]')

        # Event-driven: accepted at once, it waits in inventory's queue.
        form = fill_order(context, daphne_url, product, name=f"Eve {tag}", mode="event")
        form.click('#order-form button[type="submit"]')
        form.wait_for_url("**/orders/*/#token=*")
        event_order = form.url.partition("#")[0].rstrip("/").rsplit("/", 1)[-1]
        form.wait_for_selector("#order-status[data-status=PENDING]")

        # Command-driven: orders waits for inventory's reply and gives up after the timeout.
        form2 = fill_order(context, daphne_url, product, name=f"Cmd {tag}", mode="command")
        with form2.expect_navigation():
            form2.click('#order-form button[type="submit"]')
        error = form2.text_content('#order-form .errorlist[role="alert"]')
        assert "inventory did not answer ReserveStock" in error and "rejected" in error
        # The graph drew the command on its lane and its timeout.
        graph.wait_for_selector('#graph path[data-lane="orders->inventory|command"][data-last-reply="timeout"]')
        SHOTS.mkdir(parents=True, exist_ok=True)
        graph.screenshot(path=str(SHOTS / "lab-paused.png"), full_page=True)

        graph.click(f"{inventory} button[data-action=resume]")
        graph.wait_for_selector(f'{inventory}[data-consumer="online"]')
    finally:
        control.resume("inventory")  # whatever happened above, leave inventory consuming

    form.wait_for_selector("#order-status[data-status=CONFIRMED]", timeout=60_000)
    # The comparison panel (polled every 3 s) counts both orders, placed while inventory was offline.
    graph.wait_for_function(
        """([before]) => {
             const v = (m, r, f) => Number(document.querySelector(
               `#comparison-table tr[data-mode="${m}"][data-row="${r}"] td[data-field="${f}"]`)?.dataset.value || 0);
             return v("event", "while_offline", "confirmed") > before.ec
                 && v("command", "while_offline", "failed") > before.cf
                 && v("event", "all", "confirmed") > before.eac && v("command", "all", "failed") > before.caf; }""",
        arg=[{"ec": before[("event", "while_offline", "confirmed")], "cf": before[("command", "while_offline", "failed")],
              "eac": before[("event", "all", "confirmed")], "caf": before[("command", "all", "failed")]}],
        timeout=30_000)
    assert graph.text_content("#comparison-note").strip()
    graph.wait_for_timeout(800)
    graph.locator("#lab").scroll_into_view_if_needed()
    graph.screenshot(path=str(SHOTS / "lab.png"), full_page=True)

    # The command-driven order's trace: its metrics and its commands with their replies.
    from orders.models import Order

    command_order = str(Order.objects.using("orders").get(customer_name=f"Cmd {tag}").order_id)
    trace = context.new_page()
    trace.goto(f"{daphne_url}/orders/{command_order}/")
    trace.wait_for_selector("#order-status[data-status=REJECTED]")
    trace.wait_for_selector('#metrics dl[data-mode="command"][data-failed="1"]')
    trace.wait_for_selector('#metrics .waits tr[data-command="ReserveStock"][data-outcome="timeout"]')
    trace.wait_for_selector('#timeline tr.command-row[data-event-type="ReserveStock"]')
    trace.wait_for_selector('#timeline tr.reply-row[data-outcome="timeout"]')
    trace.screenshot(path=str(SHOTS / "trace-command.png"), full_page=True)

    event_trace = context.new_page()
    event_trace.goto(f"{daphne_url}/orders/{event_order}/")
    event_trace.wait_for_selector('#metrics dl[data-mode="event"][data-failed="0"]')
    assert "nobody waited" in event_trace.text_content("#metrics")
    assert event_trace.text_content('#metrics [data-metric="outcome"]').startswith("CONFIRMED")
    assert not context.errors, context.errors
