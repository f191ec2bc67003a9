"""The state of every context: queue depth (asked of the broker), whether its consumer is
online (asked of the workers, else told by receipts, counted in process-wide state here),
handled and failed counts, subscription and local view; and the websocket's snapshot."""

from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db.models import Count, Max

from dashboard.log_queries import DB, entries, last_seq, views
from dashboard.models import LogEntry
from devstack.processes import worker_names
from devstack.status import read_down
from eventbus import broker, control, registry, subscriptions

# A consumer that sent a receipt this recently is draining its queue.
ONLINE_WINDOW = 5.0
# Messages waiting this long with no receipt from the consumer: it is offline.
OFFLINE_AFTER = 2.0


def contexts() -> list[str]:
    """Every context: the installed ones plus any plugin context that subscribes."""
    return sorted(set(control.context_names()) | set(registry.contexts()))


class _ReceiptTally:
    """Receipt counts per context and outcome, counted incrementally by seq so each
    call reads only the rows appended since the last one (process-wide, thread-safe)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.upto = 0
        self.counts: dict[str, dict[str, int]] = {}
        self.last_receipt: dict[str, float] = {}

    def read(self) -> tuple[dict, dict]:
        with self.lock:
            top = last_seq()
            if top < self.upto:  # the log was recreated (tests, a fresh database)
                self.reset()
            if top > self.upto:
                rows = (LogEntry.objects.using(DB)
                        .filter(kind=LogEntry.RECEIPT, seq__gt=self.upto, seq__lte=top)
                        .values("context", "outcome").annotate(n=Count("seq"), last=Max("recorded_at")))
                # The dashboard's own ok receipts are its event rows (LogEntry.delivery).
                own = (LogEntry.objects.using(DB)
                       .filter(kind=LogEntry.EVENT, delivery__isnull=False, seq__gt=self.upto, seq__lte=top)
                       .aggregate(n=Count("seq"), last=Max("recorded_at")))
                if own["n"]:
                    rows = [*rows, {"context": "dashboard", "outcome": "ok", **own}]
                for row in rows:
                    per = self.counts.setdefault(row["context"], {})
                    per[row["outcome"]] = per.get(row["outcome"], 0) + row["n"]
                    stamp = row["last"].timestamp()
                    self.last_receipt[row["context"]] = max(stamp, self.last_receipt.get(row["context"], 0))
                self.upto = top
            return {c: dict(v) for c, v in self.counts.items()}, dict(self.last_receipt)


_tally = _ReceiptTally()
_waiting_since: dict[str, float] = {}


def consumer_online(context: str, depth: int | None, last_receipt: float | None, now: float) -> bool | None:
    """True: it sent a receipt lately. False: messages wait and nobody drains them.
    None: nothing to tell (an idle queue, or the broker did not answer)."""
    if last_receipt is not None and now - last_receipt <= ONLINE_WINDOW:
        _waiting_since.pop(context, None)
        return True
    if not depth:
        _waiting_since.pop(context, None)
        return None
    since = _waiting_since.setdefault(context, now)
    return False if now - since >= OFFLINE_AFTER else None


def queues() -> dict:
    """{"depths", "online", "handled", "failures", "subscriptions", "error"} per context
    (subscriptions: attached, replaying, lag — eventbus/subscriptions.py)."""
    names = contexts()
    error = None
    try:
        depths = broker.queue_depths(names)
    except Exception as exc:
        depths, error = {}, str(exc)
    counts, last_receipt = _tally.read()
    now = time.time()
    try:
        subscribed = subscriptions.states()
    except Exception as exc:  # a context's database is down: the rest still shows
        subscribed, error = {}, error or str(exc)
    return {
        "subscriptions": subscribed,
        "depths": depths,
        "online": {c: consumer_online(c, depths.get(c), last_receipt.get(c), now) for c in names},
        "handled": {c: counts.get(c, {}).get("ok", 0) for c in names},
        "duplicates": {c: counts.get(c, {}).get("duplicate", 0) for c in names},
        "failures": {c: counts.get(c, {}).get("failed", 0) + counts.get(c, {}).get("dead", 0) for c in names},
        "error": error,
    }


def consumers() -> dict[str, str]:
    """online / paused / offline per context, asked of the workers themselves (cached 1 s)."""
    try:
        status = control.consumer_status()
    except Exception:  # the broker is down: nobody can be asked
        status = {}
    return with_restarts(status)


def with_restarts(status: dict[str, str]) -> dict[str, str]:
    """`status` with every context whose workers `make run` is all restarting right now
    (devstack's status file) offline until one is ready: a quick restart would otherwise never
    show. While one of several workers restarts, the others still consume: it stays online."""
    restarting = set(read_down(settings.DATA_DIR))
    down = [c for c in contexts() if restarting.issuperset(worker_names(c, settings.EVENTFLOW_WORKERS))]
    return {**status, **{context: "offline" for context in down}} if down else status


def contexts_state() -> dict:
    """GET /api/contexts/: each context's queue, consumer state and local view, and the topology."""
    state = queues()
    local_views = views()
    consumer = consumers()
    return {
        "contexts": [
            {"name": c, "queue_depth": state["depths"].get(c), "consumer": consumer.get(c, "unknown"),
             "online": (consumer[c] == "online") if c in consumer else state["online"].get(c),
             "handled": state["handled"].get(c, 0), "failures": state["failures"].get(c, 0),
             "view": local_views.get(c, {}),
             **state["subscriptions"].get(c, {"attached": True, "replaying": False, "lag": 0})}
            for c in contexts()
        ],
        "topology": registry.topology(),
        "error": state["error"],
    }


def snapshot(*, limit: int = 100) -> dict:
    """What a websocket gets on connect; `seq` is the newest entry included."""
    recent = entries(limit=limit)
    return {
        "type": "snapshot",
        "seq": recent[-1].seq if recent else 0,
        "topology": registry.topology(),
        "events": [entry.as_message() for entry in recent],
        "views": views(),
        "queues": queues(),
    }
