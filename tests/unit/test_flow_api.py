"""The JSON API and the web form of orders, without workers."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.test import Client
from django.urls import resolve

from eventbus.models import OutboxMessage
from orders.models import Order
from orders.services import productview_apply

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def catalog():
    prefix = f"API{uuid.uuid4().hex[:8]}"
    for i, (price, available) in enumerate([("12.00", 5), ("3.50", 0)]):
        productview_apply(sku=f"{prefix}-{i}", name=f"Thing {i}", price=price, on_hand=available,
                          reserved=0, available=available, version=1)
    return [f"{prefix}-0", f"{prefix}-1"]


def outbox_count() -> int:
    return sum(OutboxMessage.objects.using(c).count() for c in ("orders", "inventory", "payments"))


def body(catalog, **changes):
    data = {"customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
            "lines": [{"sku": catalog[0], "qty": 2}], "payment_token": "tok_visa"}
    data.update(changes)
    return data


def post(client, data, raw=None):
    # CONTENT_TYPE again: the test client drops the header of an empty body.
    return client.post("/api/orders/", raw if raw is not None else json.dumps(data), content_type="application/json",
                       CONTENT_TYPE="application/json")


def test_a_valid_order_is_accepted_and_publishes_order_requested(client, catalog):
    before = outbox_count()
    response = post(client, body(catalog, mode="event"))
    assert response.status_code == 202
    placed = response.json()
    assert set(placed) == {"order_id", "correlation_id", "mode", "token"} and placed["mode"] == "event"
    row = OutboxMessage.objects.using("orders").get(event_type="OrderRequested", correlation_id=placed["correlation_id"])
    assert row.envelope["payload"]["order_id"] == placed["order_id"]
    assert outbox_count() == before + 1
    detail = client.get(f"/api/orders/{placed['order_id']}/", HTTP_X_ORDER_TOKEN=placed["token"]).json()
    assert (detail["status"], detail["total"], detail["currency"]) == ("PENDING", "24.00", "EUR")
    assert detail["lines"] == [{"sku": catalog[0], "name": "Thing 0", "qty": 2, "unit_price": "12.00"}]


def test_an_order_beyond_the_shown_stock_is_accepted_and_left_to_the_flow(client, catalog):
    response = post(client, body(catalog, lines=[{"sku": catalog[1], "qty": 1}]))
    assert response.status_code == 202
    order = Order.objects.using("orders").get(order_id=response.json()["order_id"])
    assert order.view_shortage == f"{catalog[1]} (requested 1, available 0)"


BAD = {
    "unknown sku": (lambda c: {"lines": [{"sku": "NOPE-" + uuid.uuid4().hex, "qty": 1}]}, "lines[0].sku"),
    "qty zero": (lambda c: {"lines": [{"sku": c[0], "qty": 0}]}, "lines[0].qty"),
    "qty too big": (lambda c: {"lines": [{"sku": c[0], "qty": 101}]}, "lines[0].qty"),
    "qty float": (lambda c: {"lines": [{"sku": c[0], "qty": 1.5}]}, "lines[0].qty"),
    "qty string": (lambda c: {"lines": [{"sku": c[0], "qty": "2"}]}, "lines[0].qty"),
    "qty bool": (lambda c: {"lines": [{"sku": c[0], "qty": True}]}, "lines[0].qty"),
    "too many lines": (lambda c: {"lines": [{"sku": f"{c[0]}x{i}", "qty": 1} for i in range(21)]}, "lines"),
    "empty cart": (lambda c: {"lines": []}, "lines"),
    "lines not a list": (lambda c: {"lines": {"sku": c[0]}}, "lines"),
    "line not an object": (lambda c: {"lines": ["x"]}, "lines[0]"),
    "duplicate sku": (lambda c: {"lines": [{"sku": c[0], "qty": 1}, {"sku": c[0], "qty": 2}]}, "lines[1].sku"),
    "bad email": (lambda c: {"customer": {"name": "Ada", "email": "not-an-email"}}, "customer.email"),
    "empty name": (lambda c: {"customer": {"name": "  ", "email": "a@example.com"}}, "customer.name"),
    "long name": (lambda c: {"customer": {"name": "x" * 101, "email": "a@example.com"}}, "customer.name"),
    "name not a string": (lambda c: {"customer": {"name": 5, "email": "a@example.com"}}, "customer.name"),
    "customer not an object": (lambda c: {"customer": "Ada"}, "customer"),
    "unknown token": (lambda c: {"payment_token": "tok_mastercard"}, "payment_token"),
    "token not a string": (lambda c: {"payment_token": None}, "payment_token"),
    "unknown mode": (lambda c: {"mode": "teleport"}, "mode"),
    "unexpected field": (lambda c: {"card_number": "4242"}, "card_number"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_request_answers_400_and_publishes_nothing(client, catalog, case):
    change, field = BAD[case]
    before = outbox_count()
    response = post(client, body(catalog, **change(catalog)))
    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert field in errors and all(isinstance(m, str) for m in errors[field]), errors
    assert outbox_count() == before


@pytest.mark.parametrize("raw", ["{not json", "[1, 2]", "", "\"text\""])
def test_malformed_json_answers_400(client, raw):
    before = outbox_count()
    response = post(client, None, raw=raw)
    assert response.status_code == 400
    assert "body" in response.json()["errors"]
    assert outbox_count() == before


def test_missing_fields_are_named(client):
    response = post(client, {})
    assert set(response.json()["errors"]) >= {"customer", "lines", "payment_token"}


def test_the_api_needs_no_csrf_token_but_the_form_does(catalog):
    client = Client(enforce_csrf_checks=True)
    assert post(client, body(catalog)).status_code == 202
    response = client.post("/orders/new/", {"customer_name": "Ada", "customer_email": "ada@example.com",
                                            "payment_token": "tok_visa", f"qty__{catalog[0]}": "1"})
    assert response.status_code == 403


def test_products_and_unknown_orders(client, catalog):
    products = {p["sku"]: p for p in client.get("/api/products/").json()["products"]}
    assert products[catalog[0]] == {"sku": catalog[0], "name": "Thing 0", "price": "12.00", "available": 5, "version": 1}
    for order_id in (str(uuid.uuid4()), "not-a-uuid"):
        response = client.get(f"/api/orders/{order_id}/")
        assert response.status_code == 404 and "errors" in response.json()


def test_the_form_shows_the_view_and_field_errors(client, catalog):
    page = client.get("/orders/new/")
    assert page.status_code == 200
    html = page.content.decode()
    assert catalog[0] in html and "12.00" in html and "csrfmiddlewaretoken" in html and "tok_declined" in html
    before = outbox_count()
    response = client.post("/orders/new/", {"customer_name": "", "customer_email": "nope",
                                            "payment_token": "tok_visa", f"qty__{catalog[0]}": "101"})
    assert response.status_code == 400
    html = response.content.decode()
    # Each error sits next to its own field, and the field points at it (aria-describedby).
    for field in ("customer_name", "customer_email", f"qty__{catalog[0]}"):
        assert re.search(rf'<input[^>]*aria-invalid="true"[^>]*aria-describedby="id_{field}_error"[^>]*id="id_{field}">\s*'
                         rf'<(p|div) class="field-error" id="id_{field}_error">[^<]+</\1>', html), field
    response = client.post("/orders/new/", {"customer_name": "Ada", "customer_email": "ada@example.com",
                                            "payment_token": "tok_visa"})
    assert response.status_code == 400 and "the cart is empty" in response.content.decode()
    assert outbox_count() == before


def test_orders_and_dashboard_paths_never_overlap_whatever_the_include_order():
    import dashboard.urls
    import orders.urls

    order_id = str(uuid.uuid4())
    assert resolve("/orders/new/").view_name == "orders:new"
    assert resolve(f"/orders/{order_id}/").view_name == "dashboard:order-trace"
    for name, patterns in (("dashboard", dashboard.urls.urlpatterns), ("orders", orders.urls.urlpatterns)):
        others = orders.urls.urlpatterns if name == "dashboard" else dashboard.urls.urlpatterns
        for other in others:
            path = str(other.pattern).replace("<str:order_id>", order_id).replace("<uuid:order_id>", order_id)
            assert not any(p.resolve(path) for p in patterns), (name, path)


def test_the_form_places_an_order_and_redirects_to_its_trace(client, catalog):
    response = client.post("/orders/new/", {"customer_name": "Ada", "customer_email": "ada@example.com",
                                            "payment_token": "tok_declined", f"qty__{catalog[0]}": "3"})
    assert response.status_code == 302
    path = response["Location"].partition("#")[0]
    order_id = path.strip("/").split("/")[-1]
    assert path == f"/orders/{order_id}/"
    order = Order.objects.using("orders").get(order_id=order_id)
    assert (order.total, order.payment_token) == (36, "tok_declined")
