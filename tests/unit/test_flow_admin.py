"""Admin of the flow's models: inventory edits go through services and publish; the rest is read-only."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model

from eventbus.models import OutboxMessage
from inventory.models import Product
from inventory.services import product_create

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser(username=f"admin-{uuid.uuid4().hex[:8]}", password="pw-123456")
    client.force_login(user)
    return client


def changes(sku: str) -> list[dict]:
    return [r.envelope["payload"] for r in OutboxMessage.objects.using("inventory").filter(event_type="InventoryChanged")
            if r.envelope["payload"]["sku"] == sku]


def test_every_admin_page_of_the_flow_opens(admin_client):
    sku = f"ADM{uuid.uuid4().hex[:8]}"
    product = product_create(sku=sku, name="Lamp", price="10.00", on_hand=3)
    for url in ["/admin/inventory/product/", f"/admin/inventory/product/{product.pk}/change/", "/admin/inventory/product/add/",
                "/admin/inventory/reservation/", "/admin/inventory/stockadjustment/", "/admin/orders/order/",
                "/admin/orders/productview/", "/admin/payments/payment/"]:
        assert admin_client.get(url).status_code == 200, url
    assert admin_client.get("/admin/orders/order/add/").status_code == 403


def test_admin_reprice_and_restock_publish_through_services(admin_client):
    sku = f"ADM{uuid.uuid4().hex[:8]}"
    product = product_create(sku=sku, name="Lamp", price="10.00", on_hand=3)
    url = f"/admin/inventory/product/{product.pk}/change/"
    form = {"new_price": "11.50", "stock_change": "4", "adjustment_kind": "RESTOCK", "adjustment_reason": "delivery",
            "on_hand": "999", "reserved": "999", "version": "999"}  # read-only fields are ignored
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content.decode()[:2000]
    product.refresh_from_db()
    assert (str(product.price), product.on_hand, product.reserved, product.version) == ("11.50", 7, 0, 3)
    assert [(c["version"], c["price"], c["on_hand"]) for c in changes(sku)] == [(1, "10.00", 3), (2, "11.50", 3), (3, "11.50", 7)]

    response = admin_client.post(url, {"stock_change": "-8", "adjustment_kind": "CORRECTION", "adjustment_reason": "count"})
    assert response.status_code == 200 and "below zero" in response.content.decode()
    assert Product.objects.using("inventory").get(sku=sku).on_hand == 7

    # The form's rules are the service's: a refused change shows its message and publishes nothing,
    # not even the new price it came with.
    response = admin_client.post(url, {"new_price": "12.00", "stock_change": "2", "adjustment_kind": "RESTOCK"})
    assert response.status_code == 200 and "a stock adjustment needs a reason" in response.content.decode()
    assert len(changes(sku)) == 3 and str(Product.objects.using("inventory").get(sku=sku).price) == "11.50"


def test_admin_add_creates_through_the_service(admin_client):
    sku = f"ADM{uuid.uuid4().hex[:8]}"
    response = admin_client.post("/admin/inventory/product/add/", {"sku": sku, "name": "Cup", "price": "2.00", "initial_stock": "6"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert [(c["version"], c["on_hand"]) for c in changes(sku)] == [(1, 6)]
