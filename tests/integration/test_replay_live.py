"""GET /api/replay/ and GET /api/edges/ on a real Daphne after real orders through the real
workers: a past window's bounds and pages, the views at its start, frames, masking, and 400s."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from dashboard import replay
from dashboard.models import ContextView, LogEntry
from orders.models import Order
from tests.support.flow import seed_products
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]


def get(daphne_url: str, path: str, params: dict | None = None) -> tuple[int, dict]:
    url = daphne_url + path + ("?" + urllib.parse.urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def place(daphne_url: str, sku: str) -> str:
    body = {"customer": {"name": "Ada Lovelace", "email": "ada@example.com"}, "lines": [{"sku": sku, "qty": 1}],
            "payment_token": "tok_visa", "mode": "event"}
    request = urllib.request.Request(daphne_url + "/api/orders/", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["order_id"]


@pytest.fixture(scope="module")
def window(stack, django_db_setup, django_db_blocker, daphne_url):
    """A few real orders, then the window that holds them, once the log is quiet."""
    with django_db_blocker.unblock():
        skus = seed_products({"A": ("4.00", 30)}, prefix="RP")

        def reported(context: str, section: str) -> bool:
            view = ContextView.objects.using("dashboard").filter(context=context).values_list("view", flat=True).first()
            return skus["A"] in (view or {}).get(section, {})

        # The receipts carry the view rows a moment after orders' own view has them.
        wait_for(lambda: reported("orders", "products"), timeout=30, message="orders' view reported with the product")
        time.sleep(0.05)
        start = datetime.now(timezone.utc)
        order_ids = [place(daphne_url, skus["A"]) for _ in range(3)]
        wait_for(lambda: Order.objects.using("orders").filter(order_id__in=order_ids, status=Order.CONFIRMED).count() == 3,
                 timeout=90, message="the orders confirmed")
        stack.wait_idle(60)
        end = datetime.now(timezone.utc) + timedelta(milliseconds=10)
        yield {"start": start, "end": end, "order_ids": order_ids, "sku": skus["A"]}


def params(window, **extra) -> dict:
    return {"start": window["start"].isoformat(), "end": window["end"].isoformat(), **extra}


def test_a_window_holds_its_entries_the_views_at_its_start_and_a_frame_a_second(daphne_url, window, live_db):
    status, body = get(daphne_url, "/api/replay/", params(window))
    assert status == 200, body
    seqs = [e["seq"] for e in body["entries"]]
    assert seqs == sorted(seqs) and seqs[0] == body["from_seq"] and seqs[-1] == body["to_seq"]
    assert body["next_after_seq"] is None
    in_db = list(LogEntry.objects.using("dashboard").filter(seq__gte=body["from_seq"], seq__lte=body["to_seq"])
                 .order_by("seq").values_list("seq", "recorded_at"))
    assert seqs == [s for s, _ in in_db]
    assert all(window["start"] <= at < window["end"] for _, at in in_db)
    # Bounded: the entries just outside the window are not in it.
    before = LogEntry.objects.using("dashboard").filter(seq__lt=body["from_seq"]).order_by("-seq").first()
    assert before is None or before.recorded_at < window["start"]
    order_events = {e["envelope"]["payload"].get("order_id") for e in body["entries"] if e["type"] == "event"}
    assert set(window["order_ids"]) <= order_events
    # The views at the start: as the fold of the receipts' view changes rebuilds them.
    assert body["views"] == json.loads(json.dumps(replay.views_at(body["from_seq"] - 1)))
    assert window["sku"] in body["views"]["orders"]["products"]
    assert any(c["context"] == "orders" for c in body["view_changes"])
    # One frame per second, edge figures and counters of that moment.
    status, framed = get(daphne_url, "/api/replay/", params(window, part="frames"))
    assert status == 200 and (framed["from_seq"], framed["to_seq"]) == (body["from_seq"], body["to_seq"])
    seconds = int(window["end"].timestamp()) - int(window["start"].timestamp())
    assert len(framed["frames"]) == seconds
    last = framed["frames"][-1]
    edge = next(e for e in last["edges"] if (e["producer"], e["subscriber"]) == ("orders", "payments"))
    assert edge["count"] >= 3 and edge["p95_ms"] is not None
    assert last["handled"]["inventory"] >= body["counters"]["handled"].get("inventory", 0) + 3
    # Customer data masked for a viewer who is not staff, in the entries too.
    text = json.dumps(body)
    assert "ada@example.com" not in text and "Lovelace" not in text and "a***@example.com" in text


def test_pages_by_seq_add_up_to_the_whole_window(daphne_url, window):
    _, whole = get(daphne_url, "/api/replay/", params(window))
    entries, changes, after = [], [], None
    for _ in range(100):
        extra = {"limit": 7} if after is None else {"limit": 7, "after_seq": after}
        status, page = get(daphne_url, "/api/replay/", params(window, **extra))
        assert status == 200 and len(page["entries"]) <= 7
        assert ("views" in page) == (after is None)  # the views ride on the first page only
        entries += page["entries"]
        changes += page["view_changes"]
        after = page["next_after_seq"]
        if after is None:
            break
    assert [e["seq"] for e in entries] == [e["seq"] for e in whole["entries"]]
    assert changes == whole["view_changes"]


@pytest.mark.parametrize("query, field", [
    ({}, "start"),
    ({"start": "yesterday", "end": "2026-01-01T00:00:00Z"}, "start"),
    ({"start": "2026-01-01T00:00:00Z"}, "end"),
    ({"start": "2026-01-01T00:10:00Z", "end": "2026-01-01T00:00:00Z"}, "end"),  # reversed
    ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end"),  # empty
    ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T01:00:00Z"}, "end"),  # too long
    ({"start": "2999-01-01T00:00:00Z", "end": "2999-01-01T00:01:00Z"}, "start"),  # the future
    ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:01:00Z", "limit": "0"}, "limit"),
    ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:01:00Z", "limit": "5001"}, "limit"),
    ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:01:00Z", "after_seq": "-1"}, "after_seq"),
    ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:01:00Z", "after_seq": "x"}, "after_seq"),
    ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-01T00:01:00Z", "part": "everything"}, "part"),
])
def test_bad_parameters_get_400_naming_them(daphne_url, query, field):
    status, body = get(daphne_url, "/api/replay/", query)
    assert status == 400 and field in body["errors"], body


def test_edges_are_served_per_producer_subscriber_pair_after_real_orders(daphne_url, window):
    status, body = get(daphne_url, "/api/edges/", {"window": 300})
    assert status == 200
    pairs = {(e["producer"], e["subscriber"]): e for e in body["edges"]}
    for pair in [("orders", "inventory"), ("orders", "payments"), ("payments", "orders"), ("inventory", "orders")]:
        assert pairs[pair]["events_per_s"] > 0 and 0 < pairs[pair]["p50_ms"] <= pairs[pair]["p95_ms"], pair
        assert pairs[pair]["failure_share"] == 0.0
    assert body["nodes"]["payments"]["handled_per_s"] > 0
    assert get(daphne_url, "/api/edges/", {"window": "forever"})[0] == 400
