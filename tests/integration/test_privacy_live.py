"""Who sees a customer in full, on a real Daphne with real workers: staff, and whoever
placed the order (its token); everyone else sees initials and masked emails."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from django.contrib.auth.models import User
from django.test import Client
from websockets.sync.client import connect

from tests.support.flow import seed_products

pytestmark = [pytest.mark.live]

FULL = {"name": "Grace Brewster Hopper", "email": "grace@example.com"}
MASKED = {"name": "G. B. H.", "email": "g***@example.com"}


def ws_url(daphne_url: str) -> str:
    return daphne_url.replace("http", "ws", 1) + "/ws/events/"


def staff_cookie() -> str:
    user, _ = User.objects.using("default").get_or_create(username="privacy-staff", defaults={"is_staff": True})
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def http(daphne_url: str, path: str, *, body: dict | None = None, headers: dict | None = None) -> dict:
    request = urllib.request.Request(daphne_url + path, data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def order_requested_customer(ws, order_id: str, seen: list[str], timeout: float = 60) -> dict:
    """Read frames until the OrderRequested of `order_id` comes; its customer. Every frame goes to `seen`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            raw = ws.recv(timeout=1)
        except TimeoutError:
            continue
        seen.append(raw)
        frame = json.loads(raw)
        items = frame.get("items", []) if frame["type"] == "batch" else frame.get("events", [frame])
        for item in items:
            envelope = item.get("envelope") or {}
            if envelope.get("event_type") == "OrderRequested" and envelope["payload"]["order_id"] == order_id:
                return envelope["payload"]["customer"]
    pytest.fail(f"no OrderRequested of {order_id} on the websocket in {timeout}s")


def test_websocket_api_and_snapshot_mask_customers_unless_staff_and_the_token_opens_one_order(
        stack, live_db, daphne, daphne_url, ws_origin):
    sku = seed_products({"a": ("5.00", 10)}, prefix="PRIV")["a"]
    cookie = staff_cookie()
    anonymous_frames, staff_frames = [], []
    with connect(ws_url(daphne_url), origin=ws_origin, open_timeout=10, max_size=None) as anonymous, \
            connect(ws_url(daphne_url), origin=ws_origin, open_timeout=10, max_size=None,
                    additional_headers={"Cookie": cookie}) as staff:
        placed = http(daphne_url, "/api/orders/", body={
            "customer": FULL, "lines": [{"sku": sku, "qty": 1}], "payment_token": "tok_visa"})
        order_id, token = placed["order_id"], placed["token"]
        assert order_requested_customer(anonymous, order_id, anonymous_frames) == MASKED
        assert order_requested_customer(staff, order_id, staff_frames) == FULL

    # A new socket's snapshot holds the order's events: masked for anyone but staff.
    with connect(ws_url(daphne_url), origin=ws_origin, open_timeout=10, max_size=None) as late:
        snapshot = late.recv(timeout=10)
        assert json.loads(snapshot)["type"] == "snapshot"
        assert order_requested_customer_in(snapshot, order_id) == MASKED
        anonymous_frames.append(snapshot)

    # The JSON API: the trace and the log masked; the order in full only with its token.
    trace = http(daphne_url, f"/api/traces/{order_id}/")
    assert trace["state"]["customer"] == MASKED
    log = json.dumps(http(daphne_url, f"/api/events/?correlation_id={placed['correlation_id']}"))
    assert "Hopper" not in log and "grace@" not in log
    assert http(daphne_url, f"/api/orders/{order_id}/")["customer"] == MASKED
    assert http(daphne_url, f"/api/orders/{order_id}/", headers={"X-Order-Token": token})["customer"] == FULL
    page = urllib.request.urlopen(f"{daphne_url}/orders/{order_id}/", timeout=30).read().decode()
    assert "Hopper" not in page

    # The token is in no frame (staff's included) and in nothing Daphne wrote.
    assert not any(token in raw for raw in anonymous_frames + staff_frames)
    assert not any("Hopper" in raw for raw in anonymous_frames)
    assert token not in daphne.log_path.read_text(errors="replace")


def order_requested_customer_in(raw: str, order_id: str) -> dict | None:
    for item in json.loads(raw).get("events", []):
        envelope = item.get("envelope") or {}
        if envelope.get("event_type") == "OrderRequested" and envelope["payload"]["order_id"] == order_id:
            return envelope["payload"]["customer"]
    return None
