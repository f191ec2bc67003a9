"""The expensive anonymous reads do their work once per cache window, whatever the loop of
requests; text search looks at a bounded window of the log."""

from __future__ import annotations

import pytest
from django.core.cache import caches
from django.test import override_settings

from dashboard import log_queries, metrics, readcache
from eventbus import control
from tests.unit.test_dashboard_log import order_flow

pytestmark = pytest.mark.django_db(databases="__all__")


@pytest.fixture(autouse=True)
def _window():
    caches[readcache.CACHE].clear()
    with override_settings(EVENTFLOW_READ_CACHE_SECONDS=600):
        yield
    caches[readcache.CACHE].clear()


def counting(monkeypatch, owner, name: str) -> list:
    calls, real = [], getattr(owner, name)

    def wrapper(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


def test_repeated_contexts_requests_broadcast_one_worker_inspect(client, monkeypatch):
    inspects = counting(monkeypatch, control.app.control, "inspect")
    for _ in range(5):
        control._status_cache = (float("-inf"), {})  # as if each request came after its own 1 s cache
        assert client.get("/api/contexts/").status_code == 200
    assert len(inspects) == 1
    readcache.forget(readcache.CONTEXTS)  # what a staff pause or resume does
    control._status_cache = (float("-inf"), {})
    client.get("/api/contexts/")
    assert len(inspects) == 2


def test_repeated_comparison_requests_compute_it_once(client, monkeypatch):
    computed = counting(monkeypatch, metrics, "comparison")
    answers = [client.get("/api/comparison/").json() for _ in range(5)]
    assert len(computed) == 1 and all(a == answers[0] for a in answers)


def test_repeated_text_searches_run_once_and_the_live_refetch_is_never_cached(client, monkeypatch):
    order_id, _, _ = order_flow()
    searches = counting(monkeypatch, log_queries, "entries")
    for _ in range(5):
        assert len(client.get("/api/events/", {"q": order_id[:13]}).json()["items"]) == 3
    assert len(searches) == 1
    client.get("/api/events/", {"q": order_id[:8]})
    assert len(searches) == 2  # another search is another answer
    for _ in range(3):
        client.get("/api/events/", {"after_seq": 0, "limit": 10})
    assert len(searches) == 5


def test_text_search_looks_at_the_newest_entries_only(client):
    old_order, _, _ = order_flow()
    boundary = log_queries.last_seq()
    new_order, _, _ = order_flow()
    window = log_queries.last_seq() - boundary  # exactly the newer flow's entries
    assert log_queries.entries(text=old_order) and log_queries.entries(text=old_order, search_window=window) == []
    assert log_queries.entries(text=new_order, search_window=window) == log_queries.entries(text=new_order)
    with override_settings(EVENTFLOW_SEARCH_WINDOW=window):
        assert client.get("/api/events/", {"q": old_order}).json()["items"] == []
        assert len(client.get("/api/events/", {"q": new_order}).json()["items"]) >= 3
