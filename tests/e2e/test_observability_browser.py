"""The catalog, the styled order form with live availability and restock, and the graph page's
charts, in headless Chromium against the real stack. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from inventory.models import Product, StockAdjustment
from inventory.services import product_create, stock_adjust
from orders.models import ProductView
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live, pytest.mark.browser]

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def staff_login(ctx, daphne_url: str) -> None:
    client = Client()
    client.force_login(get_user_model().objects.create_user(username=f"staff-{uuid.uuid4().hex[:8]}", is_staff=True))
    host = daphne_url.split("//", 1)[1].split(":")[0]
    ctx.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "domain": host, "path": "/"}])


def test_the_catalog_page_renders_the_asyncapi_document(context, stack, live_db, daphne_url):
    product_create(sku=f"CATB-{uuid.uuid4().hex[:8]}", name="Catalog widget", price="2.00", on_hand=4)
    stack.wait_idle(60)
    page = context.new_page()
    page.goto(f"{daphne_url}/catalog/")
    card = page.locator("article#InventoryChanged")
    assert "The authoritative state of one product" in card.inner_text()
    assert card.locator('[data-field="last-seen"] time').count() == 1
    assert page.locator("article.message").count() >= 19
    # The page is styled by the site's stylesheet (hashed by whitenoise): cards have their border radius.
    assert page.evaluate("getComputedStyle(document.querySelector('article.message')).borderRadius") == "12px"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "catalog.png"), full_page=False)
    card.locator("a", has_text="in the event log").click()
    page.wait_for_url("**/events/?event_type=InventoryChanged")
    assert page.locator('select[name="event_type"]').input_value() == "InventoryChanged"
    assert context.errors == []


def test_the_order_form_is_styled_updates_availability_live_and_staff_can_restock(context, stack, live_db, daphne_url):
    call_command("seed_demo", stdout=io.StringIO())
    wait_for(lambda: ProductView.objects.using("orders").filter(sku="DEMO-LAMP").exists(), timeout=60,
             message="the demo catalog in orders' view")
    stack.wait_idle(60)
    lamp = Product.objects.using("inventory").get(sku="DEMO-LAMP")
    if lamp.available:
        stock_adjust(sku="DEMO-LAMP", delta=-lamp.available, reason="sold out for the test")
    wait_for(lambda: ProductView.objects.using("orders").get(sku="DEMO-LAMP").available == 0, timeout=60,
             message="DEMO-LAMP sold out in orders' view")

    staff_login(context, daphne_url)
    page = context.new_page()
    page.goto(f"{daphne_url}/orders/new/")
    page.wait_for_selector("#connection[data-state=live]")
    lamp_row = page.locator('tr[data-sku="DEMO-LAMP"]')
    assert lamp_row.get_attribute("class") == "sold-out"
    assert page.locator("#sold-out-notice").is_visible()
    # Field errors show next to their fields.
    page.fill('input[name="customer_email"]', "not-an-email")
    page.click('#order-form button[type="submit"]')
    error = page.locator("#id_customer_email_error")
    assert "valid email" in error.inner_text()
    assert page.locator(".field.has-error #id_customer_email").count() == 1
    page.wait_for_selector("#connection[data-state=live]")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "order-form-errors.png"), full_page=True)

    # Stock changes elsewhere: the Available column follows without a reload.
    mug_before = int(page.locator('tr[data-sku="DEMO-MUG"] [data-field="available"]').inner_text())
    stock_adjust(sku="DEMO-MUG", delta=3, reason="delivery while the form is open", kind=StockAdjustment.RESTOCK)
    wait_for(lambda: page.locator('tr[data-sku="DEMO-MUG"] [data-field="available"]').inner_text() == str(mug_before + 3),
             timeout=30, message="the form to show the new availability")

    # Staff restock from the form: inventory restocks, the page comes back with the lamp available.
    page.click("#restock-demo")
    page.wait_for_url("**/orders/new/")
    assert "Demo catalog restocked" in page.locator(".messages").inner_text()
    page.wait_for_selector("#connection[data-state=live]")
    wait_for(lambda: page.locator('tr[data-sku="DEMO-LAMP"] [data-field="available"]').inner_text() == "2",
             timeout=30, message="the restocked lamp on the form")
    page.screenshot(path=str(SHOTS / "order-form-restocked.png"), full_page=True)

    # An order from the styled form lands on its live trace.
    page.fill('input[name="qty__DEMO-LAMP"]', "1")
    page.fill('input[name="customer_name"]', "Ada Lovelace")
    page.fill('input[name="customer_email"]', "ada@example.com")
    page.click('#order-form button[type="submit"]')
    page.wait_for_url("**/orders/*/#token=*")
    page.wait_for_selector('[data-status="CONFIRMED"]', timeout=60_000)
    assert context.errors == []


def test_the_graph_page_draws_the_last_five_minutes(context, stack, live_db, daphne_url):
    sku = f"CHART-{uuid.uuid4().hex[:8]}"
    product_create(sku=sku, name="Chart widget", price="1.00", on_hand=30)
    wait_for(lambda: ProductView.objects.using("orders").filter(sku=sku).exists(), timeout=60, message="the product")
    client = Client()
    for _ in range(3):
        response = client.post("/api/orders/", {"customer": {"name": "Grace Hopper", "email": "grace@example.com"},
                                                "lines": [{"sku": sku, "qty": 1}], "payment_token": "tok_visa",
                                                "mode": "event"}, content_type="application/json")
        assert response.status_code == 202
    stack.wait_idle(60)
    page = context.new_page()
    page.goto(f"{daphne_url}/")
    page.wait_for_selector("#connection[data-state=live]")
    page.wait_for_selector("#charts[data-updated]")
    charts = page.locator("#charts figure.chart")
    assert charts.count() == 4
    for title in ("events / s", "handled / s per context", "order end to end p50 / p95"):
        chart = page.locator(f'figure[data-chart="{title}"]')
        assert chart.locator("polyline, circle").count() >= 1, title
    assert page.locator('figure[data-chart="handled / s per context"] .chart-key[data-series="inventory"]').count() == 1
    # Queue depth is sampled from the stream, about once a second.
    page.wait_for_selector('figure[data-chart="queue depth per context"] polyline[data-series="orders"]', state="attached", timeout=15_000)
    page.wait_for_timeout(1500)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".charts-card").screenshot(path=str(SHOTS / "graph-charts.png"))
    page.screenshot(path=str(SHOTS / "graph-with-charts.png"), full_page=True)
    assert context.errors == []
