"""Edge metrics: rate, delivery latency and failure share on every producer -> subscriber
edge of the graph, and handled per second on every node, over a sliding window of the log.

A delivery is one receipt row (or, for the dashboard itself, an event row that records
its own delivery, LogEntry.delivery). Per edge, over the window:

- `events_per_s`: deliveries that ended (outcome ok or dead) per second;
- `p50_ms`, `p95_ms`: from published (the envelope's occurred_at) to handled (the
  receipt's finished_at), of the ok deliveries;
- `failure_share`: failed tries (failed, dead) over all tries (ok, failed, dead);
  duplicates are neither.

Commands and their replies are not edges of the topology and are not counted here.

`EdgeWindow` is pure: it is fed rows and answers for any `now` and window. Each process
keeps one (`tracker`) that reads only the rows appended since its last read, at most once
per READ_INTERVAL: the hub asks it once per queues tick (one `edges` message a second
for every socket), `GET /api/edges/` asks it too. It never runs on the fan-out's path.
"""

from __future__ import annotations

import math
import threading
import time
from datetime import datetime

from django.db.models import Max, Min
from django.db.models.fields.json import KT
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from dashboard.models import LogEntry
from dashboard.privacy import for_viewer
from dashboard.traces import ms_between
from dashboard.views import _int_param
from eventbus import registry

DB = "dashboard"
DEFAULT_WINDOW = 60
MAX_WINDOW = 300  # seconds kept; the longest window asked for
SERIES_BUCKET = 10  # seconds per point of an edge's time series
MAX_SAMPLES = 200  # latencies kept per edge, type and second (the first ones)
READ_INTERVAL = 1.0
MAX_READ = 50_000  # rows read per refresh; a tracker further behind skips ahead
ENDED = {"ok", "dead"}
FAILED = {"failed", "dead"}
NOT_EDGES = {"command", "reply"}  # receipt kinds of the command lanes


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile, None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(share * len(ordered)) - 1)], 1)


class _Stats:
    __slots__ = ("ended", "tries", "failures", "latencies")

    def __init__(self):
        self.ended = self.tries = self.failures = 0
        self.latencies: list[float] = []

    def add(self, outcome: str, latency_ms: float | None) -> None:
        if outcome in ENDED:
            self.ended += 1
        if outcome in ENDED or outcome == "failed":
            self.tries += 1
        if outcome in FAILED:
            self.failures += 1
        if outcome == "ok" and latency_ms is not None and len(self.latencies) < MAX_SAMPLES:
            self.latencies.append(latency_ms)

    def merge(self, other: "_Stats") -> None:
        self.ended += other.ended
        self.tries += other.tries
        self.failures += other.failures
        self.latencies += other.latencies

    def figures(self, window: float) -> dict:
        return {
            "events_per_s": round(self.ended / window, 3),
            "p50_ms": percentile(self.latencies, 0.5),
            "p95_ms": percentile(self.latencies, 0.95),
            "failure_share": round(self.failures / self.tries, 4) if self.tries else 0.0,
            "count": self.ended,
            "tries": self.tries,
            "failures": self.failures,
        }


class EdgeWindow:
    """Per-second buckets of deliveries by (producer, subscriber, event_type), the last `horizon` seconds."""

    def __init__(self, horizon: int = MAX_WINDOW):
        self.horizon = horizon
        self.buckets: dict[int, dict[tuple[str, str, str], _Stats]] = {}
        self.newest = 0

    def add(self, *, producer: str, subscriber: str, event_type: str, outcome: str, at: float,
            latency_ms: float | None = None) -> None:
        second = int(at)
        if second <= self.newest - self.horizon:
            return
        if second > self.newest:  # a new second: the oldest leave
            self.newest = second
            self.prune(second)
        stats = self.buckets.setdefault(second, {})
        key = (producer, subscriber, event_type)
        if key not in stats:
            stats[key] = _Stats()
        stats[key].add(outcome, latency_ms)

    def prune(self, now: float) -> None:
        oldest = int(now) - self.horizon
        for second in [s for s in self.buckets if s <= oldest]:
            del self.buckets[second]

    def _seconds(self, now: float, window: int):
        last = int(now)
        return [(s, self.buckets[s]) for s in range(last - window + 1, last + 1) if s in self.buckets]

    def metrics(self, now: float, window: int = DEFAULT_WINDOW, *, routes: list[dict] | None = None,
                types: bool = True) -> dict:
        """{"edges": [...], "nodes": {context: {handled_per_s, failed_per_s}}} over the `window`
        seconds up to `now`; every route of `routes` is an edge even with no traffic."""
        window = max(1, min(window, self.horizon))
        edges: dict[tuple[str, str], dict] = {}
        for route in routes or []:
            edges.setdefault((route["producer"], route["subscriber"]), {"all": _Stats(), "types": {}})
        nodes: dict[str, _Stats] = {}
        for _, stats in self._seconds(now, window):
            for (producer, subscriber, event_type), one in stats.items():
                edge = edges.setdefault((producer, subscriber), {"all": _Stats(), "types": {}})
                edge["all"].merge(one)
                edge["types"].setdefault(event_type, _Stats()).merge(one)
                nodes.setdefault(subscriber, _Stats()).merge(one)
        out = []
        for (producer, subscriber), edge in sorted(edges.items()):
            item = {"producer": producer, "subscriber": subscriber, **edge["all"].figures(window)}
            if types:
                item["types"] = {t: s.figures(window) for t, s in sorted(edge["types"].items())}
            out.append(item)
        return {
            "window": window,
            "edges": out,
            "nodes": {c: {"handled_per_s": round(s.ended / window, 3),
                          "failed_per_s": round(s.failures / window, 3)} for c, s in sorted(nodes.items())},
        }

    def series(self, now: float, *, producer: str | None = None, subscriber: str | None = None,
               bucket: int = SERIES_BUCKET) -> list[dict]:
        """Deliveries per second of one edge (or every edge into `subscriber`), in `bucket`-second points."""
        last = int(now)
        points = []
        for start in range(last - self.horizon + 1, last + 1, bucket):
            total = _Stats()
            for second in range(start, min(start + bucket, last + 1)):
                for (p, s, _), one in self.buckets.get(second, {}).items():
                    if (producer is None or p == producer) and (subscriber is None or s == subscriber):
                        total.merge(one)
            points.append({"t": start, "events_per_s": round(total.ended / bucket, 3), "failures": total.failures,
                           "p95_ms": percentile(total.latencies, 0.95)})
        return points


# --- rows of the log ---------------------------------------------------------------


def _latency_ms(published, finished) -> float | None:
    try:
        return ms_between(published, finished)
    except TypeError:  # one time with a zone, one without: no latency rather than no figures
        return None


COLUMNS = ("seq", "kind", "producer", "context", "event_type", "outcome", "recorded_at")
# JSON keys read as text (KT: no JSON decoding per value).
KEYS = {"r_published": "data__published_at", "r_finished": "data__finished_at", "r_kind": "data__kind",
        "e_occurred": "data__occurred_at", "e_finished": "delivery__finished_at"}


def rows(queryset):
    """The log rows `EdgeWindow.feed` takes: only the columns and JSON keys it needs."""
    return queryset.annotate(**{name: KT(path) for name, path in KEYS.items()}).values_list(*COLUMNS, *KEYS)


def feed(window: EdgeWindow, row: tuple) -> None:
    """One row of `rows()` into `window`: a receipt is a delivery to its context, an event
    row that records its delivery is the dashboard's."""
    (_, kind, producer, context, event_type, outcome, recorded_at,
     published, finished, receipt_kind, occurred, own_finished) = row
    at = recorded_at.timestamp()
    if kind == LogEntry.RECEIPT:
        if receipt_kind in NOT_EDGES or not context:
            return
        window.add(producer=producer, subscriber=context, event_type=event_type, outcome=outcome, at=at,
                   latency_ms=_latency_ms(published, finished) if outcome == "ok" else None)
    elif own_finished:
        window.add(producer=producer, subscriber=DB, event_type=event_type, outcome="ok", at=at,
                   latency_ms=_latency_ms(occurred, own_finished))


def seq_at(moment: datetime) -> int:
    """The first seq recorded at or after `moment` (one past the newest when none is): a
    binary search on seq, since the log appends in time order (no index on recorded_at)."""
    log = LogEntry.objects.using(DB)
    bounds = log.aggregate(lo=Min("seq"), hi=Max("seq"))
    lo, hi = bounds["lo"], bounds["hi"]
    if lo is None:
        return 1
    answer = hi + 1
    while lo <= hi:  # the answer is `answer` or an existing seq in [lo, hi]
        mid = (lo + hi) // 2
        row = log.filter(seq__gte=mid, seq__lte=hi).order_by("seq").values_list("seq", "recorded_at").first()
        if row is None:
            hi = mid - 1
        elif row[1] >= moment:
            answer, hi = row[0], mid - 1
        else:
            lo = row[0] + 1
    return answer


# --- the process's tracker ---------------------------------------------------------


class Tracker:
    """This process's EdgeWindow, kept up with the log by seq, read at most once per READ_INTERVAL."""

    def __init__(self):
        self.lock = threading.Lock()
        self.window = EdgeWindow()
        self.upto: int | None = None
        self.read_at = -READ_INTERVAL

    def refresh(self, *, force: bool = False) -> None:
        with self.lock:
            now = time.monotonic()
            if not force and now - self.read_at < READ_INTERVAL:
                return
            self.read_at = now
            log = LogEntry.objects.using(DB)
            top = log.aggregate(top=Max("seq"))["top"] or 0
            if self.upto is None or top < self.upto:  # first read, or the log was recreated
                self.window = EdgeWindow()
                since = datetime.fromtimestamp(time.time() - MAX_WINDOW).astimezone()
                self.upto = seq_at(since) - 1
            if top - self.upto > MAX_READ:
                self.upto = top - MAX_READ
            if top > self.upto:
                for row in rows(log.filter(seq__gt=self.upto, seq__lte=top).order_by("seq")):
                    feed(self.window, row)
                self.upto = top

    def metrics(self, window: int = DEFAULT_WINDOW, *, types: bool = True) -> dict:
        self.refresh()
        with self.lock:
            return {**self.window.metrics(time.time(), window, routes=registry.topology()["routes"], types=types),
                    "upto": self.upto or 0}

    def series(self, **which) -> list[dict]:
        self.refresh()
        with self.lock:
            return self.window.series(time.time(), **which)


tracker = Tracker()


def live_message(depths: dict | None = None) -> dict:
    """The websocket's once-a-second {"type": "edges"} message: every edge over the default
    window, and each node's handled and failed per second with its backlog (queue depth)."""
    figures = tracker.metrics(DEFAULT_WINDOW)
    nodes = figures["nodes"]
    for context, depth in (depths or {}).items():
        nodes.setdefault(context, {"handled_per_s": 0.0, "failed_per_s": 0.0})["backlog"] = depth
    return {"type": "edges", **figures}


def last_failures(*, producer: str | None, subscriber: str | None, limit: int = 5) -> list[dict]:
    """The newest failed or dead deliveries of an edge (or into a node), for the side panel."""
    log = LogEntry.objects.using(DB).filter(kind=LogEntry.RECEIPT, outcome__in=sorted(FAILED))
    if producer:
        log = log.filter(producer=producer)
    if subscriber:
        log = log.filter(context=subscriber)
    return [{"seq": e.seq, "event_id": e.event_id, "event_type": e.event_type, "producer": e.producer,
             "context": e.context, "outcome": e.outcome, "correlation_id": e.correlation_id,
             "error": str((e.data or {}).get("error", ""))[:300], "recorded_at": e.recorded_at.isoformat()}
            for e in log.order_by("-seq")[:limit]]


# --- GET /api/edges/ ---------------------------------------------------------------


@require_GET
def api_edges(request: HttpRequest) -> JsonResponse:
    """GET /api/edges/?window=60[&producer=&subscriber=]: one entry per producer -> subscriber
    edge; with producer and/or subscriber only those edges, with their time series (the last
    MAX_WINDOW seconds) and last failures (the side panel)."""
    try:
        window = _int_param(request, "window", default=DEFAULT_WINDOW, minimum=1, maximum=MAX_WINDOW)
    except ValueError as exc:
        return JsonResponse({"errors": {"window": [str(exc)]}}, status=400)
    known = set(registry.topology()["nodes"])
    which = {}
    for name in ("producer", "subscriber"):
        value = request.GET.get(name) or None
        if value is not None and value not in known:
            return JsonResponse({"errors": {name: [f"unknown context (one of {', '.join(sorted(known))})"]}}, status=400)
        which[name] = value
    figures = tracker.metrics(window)
    if which["producer"] or which["subscriber"]:
        figures["edges"] = [e for e in figures["edges"]
                            if all(v is None or e[k] == v for k, v in which.items())]
        figures["series"] = tracker.series(**which)
        figures["series_bucket"] = SERIES_BUCKET
        figures["failures"] = last_failures(**which)
    return JsonResponse(for_viewer(figures, request.user))
