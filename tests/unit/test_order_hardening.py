"""Orders' API and form against bad input and abuse: content types, body size, depth, unsafe
text, the rate limit, and who may read an order in full (staff, or the holder of its token)."""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings

from eventbus.models import OutboxMessage
from orders import throttle
from orders.services import productview_apply

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture
def sku():
    sku = f"HARD{uuid.uuid4().hex[:8]}"
    productview_apply(sku=sku, name="Thing", price="12.00", on_hand=50, reserved=0, available=50, version=1)
    return sku


@pytest.fixture(autouse=True)
def _fresh_buckets():
    throttle.reset()
    yield
    throttle.reset()


def outbox_count() -> int:
    return sum(OutboxMessage.objects.using(c).count() for c in ("orders", "inventory", "payments"))


def order(sku, **changes) -> dict:
    data = {"customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
            "lines": [{"sku": sku, "qty": 1}], "payment_token": "tok_visa"}
    data.update(changes)
    return data


def post_raw(client, raw, content_type="application/json", **extra):
    return client.post("/api/orders/", raw, content_type=content_type, **extra)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""])
def test_a_body_that_is_not_declared_json_gets_415_and_places_nothing(client, sku, content_type):
    before = outbox_count()
    response = post_raw(client, json.dumps(order(sku)), content_type=content_type)
    assert response.status_code == 415, response.content
    assert "body" in response.json()["errors"]
    assert outbox_count() == before


def test_json_with_a_charset_is_json(client, sku):
    assert post_raw(client, json.dumps(order(sku)), content_type="application/json; charset=utf-8").status_code == 202


def test_a_body_past_the_documented_limit_gets_413_and_places_nothing(client, sku, settings):
    assert settings.EVENTFLOW_MAX_BODY_BYTES == 262144  # the README's default
    before = outbox_count()
    padded = json.dumps(order(sku, mode="event"))
    padded = padded[:-1] + " " * (settings.EVENTFLOW_MAX_BODY_BYTES + 1 - len(padded)) + "}"
    assert len(padded) == settings.EVENTFLOW_MAX_BODY_BYTES + 1
    response = post_raw(client, padded)
    assert response.status_code == 413 and "body" in response.json()["errors"]
    assert post_raw(client, padded.replace("  ", " ", 1)).status_code == 202  # at the limit: accepted
    assert outbox_count() == before + 1


@override_settings(EVENTFLOW_MAX_BODY_BYTES=100)
def test_a_body_longer_than_its_content_length_is_refused_and_places_nothing(client, sku):
    # Content-Length says 10, the stream holds more: read at most the declared length or the limit.
    before = outbox_count()
    response = post_raw(client, json.dumps(order(sku)), CONTENT_LENGTH="10")
    assert response.status_code in (400, 413), response.content  # cut at 10 bytes (400) or past the limit (413)
    assert outbox_count() == before


@pytest.mark.parametrize("raw", ["[" * 100_000, '{"a":' * 40_000, "[" * 2_000 + "]" * 2_000])
def test_deeply_nested_json_gets_400_never_500(client, raw):
    before = outbox_count()
    response = post_raw(client, raw)
    assert response.status_code == 400, response.content[:300]
    assert "body" in response.json()["errors"]
    assert outbox_count() == before


UNSAFE = {
    "NUL in the name": (lambda s: order(s, customer={"name": "Ada\x00", "email": "ada@example.com"}), "customer.name"),
    "lone surrogate in the name": (lambda s: order(s, customer={"name": "Ada \ud800", "email": "ada@example.com"}), "customer.name"),
    "NUL in the email": (lambda s: order(s, customer={"name": "Ada", "email": "ada\x00@example.com"}), "customer.email"),
    "lone surrogate in a SKU": (lambda s: order(s, lines=[{"sku": s + "\udc00", "qty": 1}]), "lines[0].sku"),
    "NUL in the token": (lambda s: order(s, payment_token="tok_visa\x00"), "payment_token"),
    "NUL in a field name": (lambda s: {**order(s), "x\x00": 1}, "body"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_nul_characters_and_lone_surrogates_get_400_naming_the_field(client, sku, case):
    make, field = UNSAFE[case]
    before = outbox_count()
    response = post_raw(client, json.dumps(make(sku)))  # json.dumps escapes them: \u0000, \ud800
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"], response.json()
    assert outbox_count() == before


def test_the_form_refuses_a_nul_in_the_name(client, sku):
    before = outbox_count()
    response = client.post("/orders/new/", {"customer_name": "Ada\x00", "customer_email": "ada@example.com",
                                            "payment_token": "tok_visa", f"qty__{sku}": "1"})
    assert response.status_code == 400
    assert outbox_count() == before


@override_settings(EVENTFLOW_ORDER_RATE_LIMIT="3/60")
def test_order_placement_is_rate_limited_per_client_address_with_retry_after(client, sku):
    for _ in range(3):
        assert post_raw(client, json.dumps(order(sku))).status_code == 202
    before = outbox_count()
    refused = post_raw(client, json.dumps(order(sku)))
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 20  # one placement comes back every 60/3 s
    assert "rate" in refused.json()["errors"]
    form = client.post("/orders/new/", {"customer_name": "Ada", "customer_email": "ada@example.com",
                                        "payment_token": "tok_visa", f"qty__{sku}": "1"})
    assert form.status_code == 429 and form["Retry-After"]
    assert outbox_count() == before
    # Another address has its own allowance.
    assert post_raw(client, json.dumps(order(sku)), REMOTE_ADDR="192.0.2.7").status_code == 202


@override_settings(EVENTFLOW_ORDER_RATE_LIMIT="0")
def test_a_rate_limit_of_0_is_off(client, sku):
    assert all(post_raw(client, json.dumps(order(sku))).status_code == 202 for _ in range(70))


# --- who may read an order in full ---------------------------------------------------


def staff_client() -> Client:
    user, _ = User.objects.using("default").get_or_create(username=f"staff-{uuid.uuid4().hex[:6]}",
                                                          defaults={"is_staff": True})
    client = Client()
    client.force_login(user)
    return client


def test_an_order_is_in_full_for_staff_and_its_token_masked_for_anyone_else(client, sku, caplog):
    caplog.set_level(logging.DEBUG)
    placed = post_raw(client, json.dumps(order(sku))).json()
    token, order_id = placed["token"], placed["order_id"]
    assert len(token) >= 40
    full = {"name": "Ada Lovelace", "email": "ada@example.com"}
    masked = {"name": "A. L.", "email": "a***@example.com"}

    def customer(c, **headers):
        response = c.get(f"/api/orders/{order_id}/", **headers)
        assert response.status_code == 200
        return response.json()["customer"]

    assert customer(Client()) == masked
    assert customer(Client(), HTTP_X_ORDER_TOKEN="wrong" + token[5:]) == masked
    assert customer(Client(), HTTP_X_ORDER_TOKEN=token) == full
    assert customer(staff_client()) == full
    other = post_raw(client, json.dumps(order(sku))).json()
    assert Client().get(f"/api/orders/{other['order_id']}/", HTTP_X_ORDER_TOKEN=token).json()["customer"] == masked

    # The token is in no event and no log line.
    envelopes = [json.dumps(row.envelope) for c in ("orders", "inventory", "payments")
                 for row in OutboxMessage.objects.using(c).all()]
    assert any(order_id in e for e in envelopes) and not any(token in e for e in envelopes)
    assert token not in caplog.text


def test_the_form_redirects_with_the_token_in_the_fragment_and_it_opens_the_order(client, sku):
    response = client.post("/orders/new/", {"customer_name": "Ada Lovelace", "customer_email": "ada@example.com",
                                            "payment_token": "tok_visa", f"qty__{sku}": "1"})
    assert response.status_code == 302
    path, _, fragment = response["Location"].partition("#")
    order_id = path.strip("/").split("/")[-1]
    assert path == f"/orders/{order_id}/" and fragment.startswith("token=")
    token = fragment[len("token="):]
    detail = Client().get(f"/api/orders/{order_id}/", HTTP_X_ORDER_TOKEN=token).json()
    assert detail["customer"] == {"name": "Ada Lovelace", "email": "ada@example.com"}
