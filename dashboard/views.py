"""HTTP views of the dashboard: its pages, the log / trace / contexts APIs and the health check.

Every JSON answer goes through privacy.for_viewer: customer emails are masked for
anyone not logged in as staff. Pages render no event data server-side; their
scripts read these APIs and the websocket and set every string with textContent.
"""

from __future__ import annotations

import json

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from contracts import event_types
from dashboard import health, log_queries, metrics, readcache, traces
from devstack.status import read_down
from dashboard.privacy import for_viewer, may_see_emails
from eventbus import broker


# Longest text search accepted (characters); the rest is ignored.
MAX_QUERY = 200


def _json(request: HttpRequest, data: dict, status: int = 200) -> JsonResponse:
    return JsonResponse(for_viewer(data, request.user), status=status)


# --- pages -----------------------------------------------------------------------


@require_GET
def graph_page(request: HttpRequest):
    """/ : the live propagation graph and the local view panels."""
    return render(request, "dashboard/graph.html", {"page": "graph"})


@require_GET
def log_page(request: HttpRequest):
    """/events/ : the live event log with filters and the detail of one event."""
    return render(request, "dashboard/events.html", {
        "page": "events", "event_types": event_types(), "producers": health.contexts(),
    })


@require_GET
def trace_page(request: HttpRequest, order_id: str):
    """/orders/<order_id>/ : the order's status and the trace of its flow, live."""
    return render(request, "dashboard/trace.html", {"page": "trace", "order_id": order_id})


def _int_param(request: HttpRequest, name: str, *, default: int | None, minimum: int, maximum: int | None = None):
    raw = request.GET.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be between {minimum} and {maximum}" if maximum else f"{name} must be at least {minimum}")
    return value


@require_GET
def api_events(request: HttpRequest) -> JsonResponse:
    """GET /api/events/?after_seq=&correlation_id=&event_type=&limit="""
    try:
        after_seq = _int_param(request, "after_seq", default=None, minimum=0)
        limit = _int_param(request, "limit", default=200, minimum=1, maximum=log_queries.MAX_LIMIT)
    except ValueError as exc:
        return JsonResponse({"errors": {"query": [str(exc)]}}, status=400)
    kind = request.GET.get("kind") or None
    if kind not in (None, "event", "receipt"):
        return JsonResponse({"errors": {"kind": ["must be event or receipt"]}}, status=400)
    text = (request.GET.get("q") or "")[:MAX_QUERY].strip() or None
    search_data = may_see_emails(request.user)

    def answer() -> dict:
        items = log_queries.entries(
            after_seq=after_seq,
            correlation_id=request.GET.get("correlation_id") or None,
            event_type=request.GET.get("event_type") or None,
            producer=request.GET.get("producer") or None,
            kind=kind,
            text=text,
            search_data=search_data,
            limit=limit,
            search_window=settings.EVENTFLOW_SEARCH_WINDOW,
        )
        return {"items": [entry.as_message() for entry in items], "last_seq": log_queries.last_seq()}

    if text is None:  # the live stream's refetches: cheap, by index, and must be fresh
        return _json(request, answer())
    key = "events?" + json.dumps([sorted(request.GET.lists()), search_data])
    return _json(request, readcache.cached(key, answer))


@require_GET
def api_event_detail(request: HttpRequest, event_id: str) -> JsonResponse:
    """GET /api/events/<event_id>/: the envelope, its receipts, causation chain (root first), what it caused."""
    detail = log_queries.event_detail(event_id)
    if detail is None:
        return JsonResponse({"errors": {"event_id": ["not in the log"]}}, status=404)
    return _json(request, detail)


@require_GET
def api_trace(request: HttpRequest, order_id: str) -> JsonResponse:
    """GET /api/traces/<order_id>/: the order's state, timeline with per-hop latency, causation tree."""
    trace = traces.trace(order_id)
    if trace is None:
        return JsonResponse({"errors": {"order_id": ["no event of this order in the log (yet)"]}}, status=404)
    # The lab's figures for this one order: mode, messages, hops, synchronous waits, latency.
    trace["metrics"] = metrics.order_metrics_of(trace["correlation_ids"][0])
    trace["trace_url"] = (settings.EVENTFLOW_TRACE_URL.format(trace_id=trace["trace_id"])
                          if trace["trace_id"] and settings.EVENTFLOW_TRACE_URL else None)
    return _json(request, trace)


@require_GET
def api_contexts(request: HttpRequest) -> JsonResponse:
    """GET /api/contexts/: queue depth, consumer online (true/false/null) and local view of each context."""
    return _json(request, readcache.cached(readcache.CONTEXTS, health.contexts_state))


def _check_databases() -> None:
    for alias in connections:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")


def _check_channel_layer() -> None:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")
    # A round trip through the layer: send to a fresh channel and read it back.
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.send)(channel, {"type": "healthz.probe"})
    async_to_sync(layer.receive)(channel)


def _check_restarts() -> None:
    """`make run` is restarting a part that died (a worker, the sweep, Redis)."""
    down = read_down(settings.DATA_DIR)
    if down:
        raise RuntimeError("restarting " + ", ".join(f"{name} ({state})" for name, state in sorted(down.items())))


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """GET /healthz: 200 when database, broker and channel layer answer and `make run` restarts
    nothing; 503 names the failing part."""
    checks = {"database": _check_databases, "broker": broker.ping, "channel_layer": _check_channel_layer,
              "restarts": _check_restarts}
    results, failing = {}, []
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:
            results[name] = f"error: {exc}"
            failing.append(name)
    status = 503 if failing else 200
    return JsonResponse({"status": "fail" if failing else "ok", "failing": failing, "checks": results}, status=status)
