"""Edge metrics over a sliding window (dashboard/edges.py): the pure window, the log rows it
reads, and GET /api/edges/."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from contracts import OrderConfirmed, build_envelope
from dashboard import edges, services
from dashboard.models import LogEntry


def add(window, outcome="ok", *, at, latency=None, producer="orders", subscriber="inventory", event_type="OrderConfirmed"):
    window.add(producer=producer, subscriber=subscriber, event_type=event_type, outcome=outcome, at=at,
               latency_ms=latency)


def edge(figures, producer, subscriber):
    return next(e for e in figures["edges"] if (e["producer"], e["subscriber"]) == (producer, subscriber))


def test_rate_latency_percentiles_and_failure_share_over_the_window():
    window = edges.EdgeWindow()
    for i in range(1, 101):  # 100 ok deliveries, latencies 1..100 ms, over 50 s
        add(window, at=1000 + i // 2, latency=float(i))
    add(window, "failed", at=1040)  # a try that failed (a retry follows)
    add(window, "dead", at=1041)
    add(window, "duplicate", at=1042)  # neither a try nor an end
    figures = window.metrics(1050, 60)
    one = edge(figures, "orders", "inventory")
    assert one["count"] == 101  # ok and dead ended
    assert one["events_per_s"] == round(101 / 60, 3)
    assert (one["p50_ms"], one["p95_ms"]) == (50.0, 95.0)
    assert one["failures"] == 2 and one["failure_share"] == round(2 / 102, 4)
    assert one["types"]["OrderConfirmed"]["count"] == 101
    assert figures["nodes"]["inventory"] == {"handled_per_s": round(101 / 60, 3), "failed_per_s": round(2 / 60, 3)}


def test_the_window_slides_and_old_seconds_leave():
    window = edges.EdgeWindow(horizon=300)
    add(window, at=1000, latency=500.0)
    add(window, at=1100, latency=10.0)
    assert edge(window.metrics(1100, 60), "orders", "inventory")["count"] == 1
    assert edge(window.metrics(1100, 60), "orders", "inventory")["p95_ms"] == 10.0
    assert edge(window.metrics(1100, 300), "orders", "inventory")["count"] == 2
    assert window.metrics(1200, 60)["edges"] == []  # no traffic and no route: no edge
    add(window, at=1300)  # the newest second moves the horizon: 1000 is gone for good
    assert 1000 not in window.buckets and edge(window.metrics(1300, 300), "orders", "inventory")["count"] == 2


def test_every_route_is_an_edge_even_when_idle_and_edges_are_per_pair():
    window = edges.EdgeWindow()
    add(window, at=10, latency=5.0, producer="payments", subscriber="orders", event_type="PaymentAuthorized")
    add(window, at=10, latency=7.0, producer="payments", subscriber="orders", event_type="PaymentDeclined")
    routes = [{"producer": "orders", "subscriber": "payments", "event_type": "PaymentRequested"}]
    figures = window.metrics(10, 60, routes=routes)
    assert edge(figures, "orders", "payments") == {
        "producer": "orders", "subscriber": "payments", "events_per_s": 0.0, "p50_ms": None, "p95_ms": None,
        "failure_share": 0.0, "count": 0, "tries": 0, "failures": 0, "types": {}}
    pair = edge(figures, "payments", "orders")
    assert pair["count"] == 2 and set(pair["types"]) == {"PaymentAuthorized", "PaymentDeclined"}


def test_the_series_counts_one_edge_per_bucket():
    window = edges.EdgeWindow(horizon=60)
    for at in (1, 2, 3, 55):
        add(window, at=at, latency=1.0)
    add(window, at=3, producer="orders", subscriber="payments")
    points = window.series(59, producer="orders", subscriber="inventory", bucket=10)
    assert [p["events_per_s"] for p in points] == [0.3, 0.0, 0.0, 0.0, 0.0, 0.1]


@pytest.mark.django_db(databases="__all__")
def test_the_tracker_reads_receipts_and_the_dashboards_own_deliveries_from_the_log():
    tracker = edges.Tracker()
    tracker.refresh(force=True)
    envelope = build_envelope(OrderConfirmed(order_id=str(uuid.uuid4()), total="1.00"), producer="orders",
                              correlation_id=str(uuid.uuid4()))
    published = timezone.now() - timedelta(milliseconds=300)
    envelope = dataclasses.replace(envelope, occurred_at=published.isoformat())
    services.log_batch([("event", envelope, {"sent_at": None, "received_at": None, "started_at": None,
                                             "finished_at": timezone.now().isoformat(), "attempt": 1})])
    base = {"event_id": envelope.event_id, "event_type": "OrderConfirmed", "producer": "orders",
            "correlation_id": envelope.correlation_id, "published_at": published.isoformat(), "attempt": 1}
    services.log_receipt({**base, "context": "inventory", "outcome": "failed", "error": "boom",
                          "finished_at": timezone.now().isoformat()})
    services.log_receipt({**base, "context": "inventory", "outcome": "ok", "attempt": 2,
                          "finished_at": (published + timedelta(milliseconds=120)).isoformat()})
    services.log_receipt({**base, "context": "inventory", "outcome": "sent", "kind": "command",
                          "finished_at": timezone.now().isoformat()})  # a command lane, not an edge
    tracker.refresh(force=True)
    figures = tracker.metrics(60)
    to_inventory = edge(figures, "orders", "inventory")
    assert (to_inventory["count"], to_inventory["failures"], to_inventory["p50_ms"]) == (1, 1, 120.0)
    assert to_inventory["failure_share"] == 0.5
    to_log = edge(figures, "orders", "dashboard")
    assert to_log["count"] == 1 and to_log["p50_ms"] >= 250
    assert figures["upto"] == LogEntry.objects.using("dashboard").order_by("-seq").first().seq


@pytest.mark.django_db(databases="__all__")
def test_seq_at_finds_the_first_entry_at_or_after_a_moment():
    services.log_receipt({"event_id": str(uuid.uuid4()), "event_type": "OrderConfirmed", "producer": "orders",
                          "correlation_id": "c", "context": "inventory", "outcome": "ok", "attempt": 1})
    rows = list(LogEntry.objects.using("dashboard").order_by("seq"))
    newest = rows[-1]
    assert edges.seq_at(newest.recorded_at) <= newest.seq
    assert edges.seq_at(newest.recorded_at + timedelta(seconds=1)) == newest.seq + 1
    assert edges.seq_at(rows[0].recorded_at - timedelta(days=1)) == rows[0].seq
    for row in rows[-20:]:
        first = edges.seq_at(row.recorded_at)
        assert LogEntry.objects.using("dashboard").get(seq=first).recorded_at >= row.recorded_at
        assert not LogEntry.objects.using("dashboard").filter(seq__lt=first, recorded_at__gte=row.recorded_at).exists()


@pytest.mark.django_db(databases="__all__")
def test_api_edges_answers_per_edge_and_refuses_bad_parameters(client):
    body = client.get("/api/edges/?window=60").json()
    assert body["window"] == 60 and body["edges"]
    assert {"producer", "subscriber", "events_per_s", "p50_ms", "p95_ms", "failure_share"} <= set(body["edges"][0])
    one = client.get("/api/edges/?window=30&producer=orders&subscriber=inventory").json()
    assert [(e["producer"], e["subscriber"]) for e in one["edges"]] == [("orders", "inventory")]
    assert len(one["series"]) == edges.MAX_WINDOW // edges.SERIES_BUCKET and "failures" in one
    for bad in ("window=0", "window=301", "window=abc", "window=1.5", "producer=nobody", "subscriber=x"):
        response = client.get(f"/api/edges/?{bad}")
        assert response.status_code == 400, bad
        assert "errors" in response.json()


@pytest.mark.django_db(databases="__all__")
def test_the_live_message_carries_each_nodes_backlog_from_the_queue_depths():
    message = edges.live_message({"orders": 3, "inventory": 0, "payments": 12})
    assert message["type"] == "edges" and "edges" in message
    nodes = message["nodes"]
    assert (nodes["orders"]["backlog"], nodes["inventory"]["backlog"], nodes["payments"]["backlog"]) == (3, 0, 12)
    assert {"handled_per_s", "failed_per_s"} <= set(nodes["payments"])  # a node with no traffic has its rates too
    assert all("backlog" not in figures for figures in edges.live_message()["nodes"].values())  # no depths, no backlog


@pytest.mark.django_db(databases="__all__")
def test_last_failures_lists_a_failed_receipt_of_the_edge_newest_first():
    base = {"event_type": "OrderConfirmed", "producer": "orders", "correlation_id": str(uuid.uuid4()), "attempt": 1}
    failed_id, ok_id = str(uuid.uuid4()), str(uuid.uuid4())
    services.log_receipt({**base, "event_id": ok_id, "context": "inventory", "outcome": "ok"})
    services.log_receipt({**base, "event_id": failed_id, "context": "inventory", "outcome": "failed", "error": "boom"})
    failures = edges.last_failures(producer="orders", subscriber="inventory")
    assert failures and failures[0]["event_id"] == failed_id
    assert (failures[0]["outcome"], failures[0]["error"], failures[0]["context"]) == ("failed", "boom", "inventory")
    assert ok_id not in {f["event_id"] for f in failures}
    assert failed_id not in {f["event_id"] for f in edges.last_failures(producer="orders", subscriber="payments")}
