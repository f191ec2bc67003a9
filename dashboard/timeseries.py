"""The graph page's charts: the last minutes of the event log in fixed buckets.

Events per second (events logged), handled per second per context (receipts with outcome
ok, commands' replies included; the dashboard's own, the event rows that record their
delivery), and the p50 / p95 of order end-to-end latency (from the
request to OrderConfirmed / OrderRejected, as the comparison counts it) by when the order was
decided. Queue depth has no history in the log: the page samples it from the stream.
"""

from __future__ import annotations

import statistics
from datetime import timedelta

from django.db.models import Count
from django.db.models.functions import TruncSecond
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from contracts.clock import parse_or_none
from dashboard import metrics, readcache
from dashboard.models import LogEntry
from dashboard.traces import DECISIONS

DB = "dashboard"
WINDOW_SECONDS = 300
BUCKET_SECONDS = 5


def series(*, now=None) -> dict:
    now = now or timezone.now()
    buckets = WINDOW_SECONDS // BUCKET_SECONDS
    start = now - timedelta(seconds=WINDOW_SECONDS)

    def index(moment) -> int | None:
        i = int((moment - start).total_seconds() // BUCKET_SECONDS)
        return i if 0 <= i < buckets else None

    events = [0.0] * buckets
    handled: dict[str, list[float]] = {}
    per_second = (LogEntry.objects.using(DB).filter(recorded_at__gte=start)
                  .annotate(t=TruncSecond("recorded_at")).values("t", "kind", "context", "outcome")
                  .annotate(n=Count("seq")))
    for row in per_second:
        i = index(row["t"])
        if i is None:
            continue
        if row["kind"] == LogEntry.EVENT:
            events[i] += row["n"] / BUCKET_SECONDS
        elif row["outcome"] == "ok" and row["context"]:
            handled.setdefault(row["context"], [0.0] * buckets)[i] += row["n"] / BUCKET_SECONDS
    # The dashboard's own deliveries have no receipt rows: an event row that records its delivery is one.
    own = (LogEntry.objects.using(DB).filter(kind=LogEntry.EVENT, delivery__isnull=False, recorded_at__gte=start)
           .annotate(t=TruncSecond("recorded_at")).values("t").annotate(n=Count("seq")))
    for row in own:
        i = index(row["t"])
        if i is not None:
            handled.setdefault(DB, [0.0] * buckets)[i] += row["n"] / BUCKET_SECONDS

    # Orders decided in the window, timed with the comparison's own rule (dashboard/metrics.py).
    decided = list(LogEntry.objects.using(DB)
                   .filter(kind=LogEntry.EVENT, event_type__in=list(DECISIONS), recorded_at__gte=start)
                   .order_by("-seq").values_list("correlation_id", flat=True)[: metrics.MAX_ORDERS])
    flows: dict[str, list[LogEntry]] = {}
    for row in LogEntry.objects.using(DB).filter(correlation_id__in=decided).order_by("seq"):
        flows.setdefault(row.correlation_id, []).append(row)
    latencies: list[list[float]] = [[] for _ in range(buckets)]
    for rows in flows.values():
        order = metrics.order_metrics(rows)
        decision = next((r for r in rows if r.kind == LogEntry.EVENT and r.event_type in DECISIONS), None)
        when = parse_or_none((decision.data or {}).get("occurred_at")) if decision else None
        i = index(when) if when else None
        if order and order["latency_ms"] is not None and i is not None:
            latencies[i].append(order["latency_ms"])
    return {
        "window_seconds": WINDOW_SECONDS,
        "bucket_seconds": BUCKET_SECONDS,
        "start": start.isoformat(),
        "now": now.isoformat(),
        "events_per_second": [round(v, 2) for v in events],
        "handled_per_second": {c: [round(v, 2) for v in values] for c, values in sorted(handled.items())},
        "order_latency_ms": {
            "p50": [round(statistics.median(v), 1) if v else None for v in latencies],
            "p95": [metrics._percentile(v, 0.95) for v in latencies],
            "orders": [len(v) for v in latencies],
        },
    }


@require_GET
def api_timeseries(request: HttpRequest) -> JsonResponse:
    """GET /api/timeseries/: the last 5 minutes in 5-second buckets (no customer data)."""
    return JsonResponse(readcache.cached("timeseries", series))
