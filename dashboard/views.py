"""HTTP views of the dashboard: the log API and the health check."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from dashboard import selectors
from eventbus import broker


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
        limit = _int_param(request, "limit", default=200, minimum=1, maximum=selectors.MAX_LIMIT)
    except ValueError as exc:
        return JsonResponse({"errors": {"query": [str(exc)]}}, status=400)
    items = selectors.entries(
        after_seq=after_seq,
        correlation_id=request.GET.get("correlation_id") or None,
        event_type=request.GET.get("event_type") or None,
        limit=limit,
    )
    return JsonResponse({"items": [entry.as_message() for entry in items], "last_seq": selectors.last_seq()})


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


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """GET /healthz: 200 when database, broker and channel layer answer; 503 names the failing part."""
    checks = {"database": _check_databases, "broker": broker.ping, "channel_layer": _check_channel_layer}
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
