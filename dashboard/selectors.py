"""Reads of the dashboard log."""

from __future__ import annotations

from django.conf import settings

from dashboard.models import ContextView, LogEntry
from eventbus import broker, registry

DB = "dashboard"
MAX_LIMIT = 1000


def contexts() -> list[str]:
    return [alias for alias in settings.DATABASES if alias != "default"]


def entries(*, after_seq: int | None = None, correlation_id: str | None = None,
            event_type: str | None = None, limit: int = 200) -> list[LogEntry]:
    """Log entries filtered; ascending after `after_seq`, else the newest `limit` in ascending order."""
    rows = LogEntry.objects.using(DB).all()
    if correlation_id:
        rows = rows.filter(correlation_id=correlation_id)
    if event_type:
        rows = rows.filter(event_type=event_type)
    if after_seq is not None:
        return list(rows.filter(seq__gt=after_seq).order_by("seq")[:limit])
    return list(reversed(rows.order_by("-seq")[:limit]))


def last_seq() -> int:
    row = LogEntry.objects.using(DB).order_by("-seq").values_list("seq", flat=True).first()
    return row or 0


def views() -> dict:
    return {row.context: row.view for row in ContextView.objects.using(DB).all()}


def queues() -> dict:
    try:
        return {"depths": broker.queue_depths(contexts()), "error": None}
    except Exception as exc:
        return {"depths": {}, "error": str(exc)}


def snapshot(*, limit: int = 100) -> dict:
    return {
        "type": "snapshot",
        "seq": last_seq(),
        "topology": registry.topology(),
        "events": [entry.as_message() for entry in entries(limit=limit)],
        "views": views(),
        "queues": queues(),
    }
