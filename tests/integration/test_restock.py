"""Restocking the demo catalog on the real stack: seed_demo --restock, simulate's warning and
--restock, the staff action of the dashboard and of the admin, each through inventory's services."""

from __future__ import annotations

import io
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from eventbus.models import OutboxMessage
from inventory.demo import CATALOG, RESTOCK_REASON
from inventory.models import Product, StockAdjustment
from inventory.services import stock_adjust
from orders.models import ProductView
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]
LEVEL = {suffix: on_hand for suffix, _name, _price, on_hand in CATALOG}


def demo_catalog(stack) -> str:
    prefix = f"RS{uuid.uuid4().hex[:8]}"
    call_command("seed_demo", sku_prefix=prefix, stdout=io.StringIO())
    wait_for(lambda: ProductView.objects.using("orders").filter(sku__startswith=f"{prefix}-").count() == len(CATALOG),
             timeout=60, message="orders' view of the demo catalog")
    return prefix


def sell_out(sku: str) -> None:
    product = Product.objects.using("inventory").get(sku=sku)
    stock_adjust(sku=sku, delta=-product.available, reason="sold elsewhere")
    wait_for(lambda: ProductView.objects.using("orders").get(sku=sku).available == 0, timeout=60,
             message=f"orders' view to show {sku} sold out")


def available(sku: str) -> tuple[int, int]:
    return (Product.objects.using("inventory").get(sku=sku).available,
            ProductView.objects.using("orders").get(sku=sku).available)


def restocks(sku: str) -> list[int]:
    return list(StockAdjustment.objects.using("inventory").filter(sku=sku, kind=StockAdjustment.RESTOCK,
                                                                  reason=RESTOCK_REASON).values_list("delta", flat=True))


def test_seed_demo_restock_tops_each_product_up_and_publishes_inventory_changed(stack, live_db):
    prefix = demo_catalog(stack)
    lamp, mug = f"{prefix}-LAMP", f"{prefix}-MUG"
    sell_out(lamp)
    published = OutboxMessage.objects.using("inventory").filter(event_type="InventoryChanged").count()
    out = io.StringIO()
    call_command("seed_demo", sku_prefix=prefix, restock=True, stdout=out)
    assert "1 product(s) restocked (2 units added)" in out.getvalue(), out.getvalue()
    assert restocks(lamp) == [LEVEL["LAMP"]] and restocks(mug) == []
    assert OutboxMessage.objects.using("inventory").filter(event_type="InventoryChanged").count() == published + 1
    wait_for(lambda: available(lamp) == (LEVEL["LAMP"], LEVEL["LAMP"]), timeout=60, message="the restock in orders' view")


def test_simulate_warns_before_it_runs_the_catalog_dry_and_restocks_first_when_asked(stack, live_db):
    prefix = demo_catalog(stack)
    sell_out(f"{prefix}-LAMP")
    err, out = io.StringIO(), io.StringIO()
    call_command("simulate", orders=2, rate=0, wait=60, sku_prefix=f"{prefix}-", seed=1, stdout=out, stderr=err)
    assert "warning: this run would leave" in err.getvalue() and f"{prefix}-LAMP" in err.getvalue(), err.getvalue()
    assert "--restock" in err.getvalue()

    stack.wait_idle(60)
    sell_out(f"{prefix}-BOOK")
    err, out = io.StringIO(), io.StringIO()
    call_command("simulate", orders=2, rate=0, wait=60, sku_prefix=f"{prefix}-", seed=1, restock=True, stdout=out,
                 stderr=err)
    assert "restocked" in out.getvalue(), out.getvalue()
    assert restocks(f"{prefix}-BOOK") == [LEVEL["BOOK"]]
    assert f"{prefix}-BOOK" not in err.getvalue() and f"{prefix}-LAMP" not in err.getvalue(), err.getvalue()


def test_staff_restock_from_the_dashboard_goes_through_inventory_and_others_are_refused(stack, live_db):
    call_command("seed_demo", stdout=io.StringIO())  # the action restocks the DEMO catalog
    wait_for(lambda: ProductView.objects.using("orders").filter(sku="DEMO-LAMP").exists(), timeout=60,
             message="the demo catalog in orders' view")
    stack.wait_idle(60)
    sell_out("DEMO-LAMP")
    before = len(restocks("DEMO-LAMP"))

    anonymous = Client()
    assert anonymous.post("/catalog/restock/", {"next": "/"}).status_code == 403
    assert anonymous.get("/catalog/restock/").status_code == 405
    assert len(restocks("DEMO-LAMP")) == before

    staff = Client()
    staff.force_login(get_user_model().objects.create_user(username=f"staff-{uuid.uuid4().hex[:8]}", is_staff=True))
    response = staff.post("/catalog/restock/", {"next": "/orders/new/"}, follow=True)
    assert response.redirect_chain == [("/orders/new/", 302)]
    assert "Demo catalog restocked" in response.content.decode()
    assert restocks("DEMO-LAMP")[before:] == [LEVEL["LAMP"]]
    wait_for(lambda: available("DEMO-LAMP") == (LEVEL["LAMP"], LEVEL["LAMP"]), timeout=60,
             message="the restock in orders' view")
    # Only the two pages of the site are places to go back to.
    assert staff.post("/catalog/restock/", {"next": "https://example.com/"})["Location"] == "/"


def test_admin_action_restocks_the_selected_demo_products(stack, live_db):
    prefix = demo_catalog(stack)
    sell_out(f"{prefix}-POSTER")
    admin = Client()
    admin.force_login(get_user_model().objects.create_superuser(username=f"admin-{uuid.uuid4().hex[:8]}", password="pw-123456"))
    poster = Product.objects.using("inventory").get(sku=f"{prefix}-POSTER")
    published = OutboxMessage.objects.using("inventory").filter(event_type="InventoryChanged").count()
    response = admin.post("/admin/inventory/product/", {"action": "restock_demo_catalog", "_selected_action": [poster.pk]},
                          follow=True)
    assert response.status_code == 200 and "1 product(s) restocked" in response.content.decode()
    assert restocks(f"{prefix}-POSTER") == [LEVEL["POSTER"]]
    # Through inventory's services: the restock is published, and orders' view follows.
    assert OutboxMessage.objects.using("inventory").filter(event_type="InventoryChanged").count() == published + 1
    wait_for(lambda: available(f"{prefix}-POSTER") == (LEVEL["POSTER"], LEVEL["POSTER"]), timeout=60,
             message="the restock in orders' view")


def test_staff_restock_with_the_broker_down_says_so_instead_of_failing(stack, live_db):
    staff = Client()
    staff.force_login(get_user_model().objects.create_user(username=f"staff-{uuid.uuid4().hex[:8]}", is_staff=True))
    stack.redis.kill()
    try:
        response = staff.post("/catalog/restock/", {"next": "/"}, follow=True)
    finally:
        stack.redis.start()
    assert response.redirect_chain == [("/", 302)]
    assert "Restock not done" in response.content.decode()
