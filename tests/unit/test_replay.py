"""Time travel's view-at-moment fold (dashboard/replay.py): the view rebuilt at seq N is the view
the context reported at seq N, with checkpoints or without, and after the history is pruned."""

from __future__ import annotations

import random
import time
import uuid
from datetime import timedelta

import pytest
from django.core.cache import caches
from django.test import override_settings
from django.utils import timezone

from dashboard import readcache, replay, services
from dashboard.models import ContextView, LogEntry, ViewChange, ViewCheckpoint

pytestmark = pytest.mark.django_db(databases="__all__")


def receipt(context="orders"):
    return {"event_id": str(uuid.uuid4()), "event_type": "InventoryChanged", "producer": "inventory",
            "correlation_id": str(uuid.uuid4()), "context": context, "outcome": "ok", "attempt": 1}


def reported() -> dict:
    return {row.context: row.view for row in ContextView.objects.using("dashboard").all()}


def run_history(rng: random.Random, batches: int = 60) -> dict[int, dict]:
    """Batches of receipts and changed view rows as the workers send them: rows out of version
    order, batches with views and no entry (the same seq again), sections of every shape."""
    versions: dict[tuple, int] = {}
    seen: dict[int, dict] = {}
    for _ in range(batches):
        views = {}
        for context, section in rng.sample([("orders", "products"), ("inventory", "stock"),
                                            ("payments", "totals_by_status")], rng.randint(1, 3)):
            rows = {}
            for sku in rng.sample(["A", "B", "C", "D"], rng.randint(1, 3)):
                version = versions[(context, sku)] = versions.get((context, sku), 0) + 1
                if rng.random() < 0.2:  # a late, older row: never replaces a newer one
                    version = max(1, version - 2)
                rows[sku] = {"available": rng.randint(0, 9), "version": version}
            views[context] = {section: rows}
        if rng.random() < 0.3:
            views.setdefault("orders", {})["orders_by_status"] = {"CONFIRMED": rng.randint(0, 50)}
        items = [("receipt", receipt()) for _ in range(rng.randint(0, 3))]
        services.log_batch(items, views)
        newest = LogEntry.objects.using("dashboard").order_by("-seq").values_list("seq", flat=True).first() or 0
        seen[newest] = reported()  # the same seq twice (views only): the later report is the one at it
    return seen


@pytest.mark.parametrize("checkpoint_seconds", [0.0, 1e9], ids=["checkpoint-every-write", "one-checkpoint"])
def test_the_view_rebuilt_at_seq_n_is_the_view_reported_at_seq_n(monkeypatch, checkpoint_seconds):
    monkeypatch.setattr(services, "CHECKPOINT_SECONDS", checkpoint_seconds)
    monkeypatch.setattr(services, "_checkpointed", {})
    seen = run_history(random.Random(15))
    assert len(seen) > 30
    if checkpoint_seconds:
        assert ViewCheckpoint.objects.using("dashboard").count() == 3  # the first write of each context
    for seq, views in seen.items():
        assert replay.views_at(seq) == views, f"at seq {seq}"
    first = min(seen)
    assert replay.views_at(first - 1) == {}  # before the first report: nothing


def test_pruning_keeps_the_fold_right_for_every_retained_seq(monkeypatch):
    monkeypatch.setattr(services, "CHECKPOINT_SECONDS", 0.0)
    seen = run_history(random.Random(7), batches=40)
    cut = sorted(seen)[len(seen) // 2]
    LogEntry.objects.using("dashboard").filter(seq__lt=cut).delete()  # as retention would
    changes_before = ViewChange.objects.using("dashboard").count()
    assert replay.view_history_prune() > 0
    assert ViewChange.objects.using("dashboard").count() < changes_before
    for seq, views in seen.items():
        if seq >= cut:
            assert replay.views_at(seq) == views, f"at seq {seq}"


def test_counters_at_a_moment_count_as_the_live_tally_does():
    services.log_batch([("receipt", receipt("orders")), ("receipt", {**receipt("payments"), "outcome": "dead"}),
                        ("receipt", {**receipt("payments"), "outcome": "duplicate"})])
    seq = LogEntry.objects.using("dashboard").order_by("-seq").first().seq
    services.log_batch([("receipt", receipt("orders"))])
    assert replay.counters_at(seq) == {"handled": {"orders": 1}, "failures": {"payments": 1}}
    assert replay.counters_at(seq + 1)["handled"] == {"orders": 2}


def test_a_window_that_ended_in_the_past_is_computed_once_then_served_from_the_cache(client, monkeypatch):
    services.log_batch([("receipt", receipt("orders"))])
    # Held by the log: its oldest entry is older than the window (what the answer holds is not the point here).
    oldest = LogEntry.objects.using("dashboard").order_by("seq").first()
    LogEntry.objects.using("dashboard").filter(seq=oldest.seq).update(recorded_at=timezone.now() - timedelta(minutes=5))
    calls, real = [], replay.window_page
    monkeypatch.setattr(replay, "window_page", lambda *a, **k: calls.append(1) or real(*a, **k))
    end = timezone.now() - timedelta(seconds=replay.SETTLED_AFTER + 5)
    query = {"start": (end - timedelta(seconds=30)).isoformat(), "end": end.isoformat()}
    caches[readcache.CACHE].clear()
    # The reads cache keeps an answer 50 ms; a settled window is kept SETTLED_CACHE_SECONDS.
    with override_settings(EVENTFLOW_READ_CACHE_SECONDS=0.05):
        first = client.get("/api/replay/", query)
        time.sleep(0.2)
        second = client.get("/api/replay/", query)
    caches[readcache.CACHE].clear()
    assert first.status_code == second.status_code == 200, first.json()
    assert first.json() == second.json()
    assert len(calls) == 1


def test_a_window_the_log_no_longer_holds_gets_400_and_the_bounds_say_since_when(client):
    services.log_batch([("receipt", receipt("orders"))])
    newest = LogEntry.objects.using("dashboard").order_by("-seq").first()
    bounds = client.get("/api/replay/", {"part": "bounds"}).json()
    assert bounds["max_seconds"] == replay.MAX_SECONDS
    assert bounds["retained_from"] == replay.retained_from().isoformat()
    assert replay.retained_from() <= newest.recorded_at
    response = client.get("/api/replay/", {"start": "2020-01-01T00:00:00Z", "end": "2020-01-01T00:01:00Z"})
    assert response.status_code == 400
    assert "holds nothing before" in response.json()["errors"]["start"][0]
    # A window that ends after the oldest entry is served, even if it starts before it.
    end = newest.recorded_at + timedelta(milliseconds=1)
    response = client.get("/api/replay/", {"start": (end - timedelta(seconds=600)).isoformat(), "end": end.isoformat()})
    assert response.status_code == 200 and response.json()["to_seq"] >= newest.seq
