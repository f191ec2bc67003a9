"""Reads of the dashboard log: entries, one event's detail and causation chain,
an order's trace, and the state of every context (queue, consumer, local view)."""

from __future__ import annotations

import threading
import time
from urllib.parse import quote

from django.conf import settings
from django.db.models import Count, Max, Q
from django.urls import reverse

from contracts.clock import parse_or_none
from contracts.envelope import trace_id_of
from dashboard.models import ContextView, LogEntry
from devstack.processes import worker_names
from devstack.status import read_down
from eventbus import broker, control, registry, subscriptions

DB = "dashboard"
MAX_LIMIT = 1000
MAX_CHAIN = 100
MAX_TRACE_ENTRIES = 5000
# A consumer that sent a receipt this recently is draining its queue.
ONLINE_WINDOW = 5.0
# Messages waiting this long with no receipt from the consumer: it is offline.
OFFLINE_AFTER = 2.0

# The events that decide an order, and the status each gives it.
DECISIONS = {"OrderConfirmed": "CONFIRMED", "OrderRejected": "REJECTED"}


def contexts() -> list[str]:
    """Every context: the installed ones plus any plugin context that subscribes."""
    return sorted(set(control.context_names()) | set(registry.contexts()))


# --- the log ---------------------------------------------------------------------


def entries(*, after_seq: int | None = None, correlation_id: str | None = None,
            event_type: str | None = None, producer: str | None = None, kind: str | None = None,
            text: str | None = None, search_data: bool = False, limit: int = 200,
            search_window: int | None = None) -> list[LogEntry]:
    """Log entries filtered; ascending after `after_seq`, else the newest `limit` in ascending order.

    `text` matches ids, types, contexts and outcomes; with `search_data` (staff only,
    since payloads hold unmasked emails) also anything inside the envelope or receipt.
    A text search looks at the newest `search_window` entries only, when given.
    """
    rows = LogEntry.objects.using(DB).all()
    if correlation_id:
        rows = rows.filter(correlation_id=correlation_id)
    if event_type:
        rows = rows.filter(event_type=event_type)
    if producer:
        rows = rows.filter(producer=producer)
    if kind:
        rows = rows.filter(kind=kind)
    if text:
        match = (Q(event_id__icontains=text) | Q(event_type__icontains=text) | Q(producer__icontains=text)
                 | Q(context__icontains=text) | Q(correlation_id__icontains=text)
                 | Q(order_id__icontains=text) | Q(outcome__icontains=text))
        if search_data:
            match |= Q(data__icontains=text)
        rows = rows.filter(match)
        if search_window is not None:
            rows = rows.filter(seq__gt=last_seq() - search_window)
    if after_seq is not None:
        return list(rows.filter(seq__gt=after_seq).order_by("seq")[:limit])
    return list(reversed(rows.order_by("-seq")[:limit]))


def last_seq() -> int:
    row = LogEntry.objects.using(DB).order_by("-seq").values_list("seq", flat=True).first()
    return row or 0


def views() -> dict:
    return {row.context: row.view for row in ContextView.objects.using(DB).all()}


def event_entry(event_id: str) -> LogEntry | None:
    return LogEntry.objects.using(DB).filter(kind=LogEntry.EVENT, event_id=event_id).first()


def receipts_of(event_id: str) -> list[LogEntry]:
    return list(LogEntry.objects.using(DB).filter(kind=LogEntry.RECEIPT, event_id=event_id).order_by("seq"))


def receipt_messages(event: LogEntry | None, receipts: list[LogEntry]) -> list[dict]:
    """Receipts of an event as messages, the dashboard's own (kept in the event's row) first."""
    own = event.own_receipt_message() if event is not None else None
    return ([own] if own else []) + [r.as_message() for r in receipts]


def causation_chain(entry: LogEntry) -> list[LogEntry]:
    """The events that led to `entry`, root first, ending with `entry` itself.

    A cause the log has not seen (yet) ends the walk; so does a cycle.
    """
    chain, seen = [entry], {entry.event_id}
    cause = entry.causation_id
    while cause and cause not in seen and len(chain) < MAX_CHAIN:
        parent = event_entry(cause)
        if parent is None:
            break
        chain.append(parent)
        seen.add(parent.event_id)
        cause = parent.causation_id
    return list(reversed(chain))


def caused_by(event_id: str) -> list[LogEntry]:
    return list(LogEntry.objects.using(DB).filter(kind=LogEntry.EVENT, causation_id=event_id).order_by("seq"))


def admin_links(entry: LogEntry) -> list[dict]:
    """Admin search pages of the entities an event touched (the owner's admin)."""
    payload = (entry.data or {}).get("payload") or {}
    links = []

    def search(label: str, model: str, value) -> None:
        href = f"{reverse(f'admin:{model}_changelist')}?q={quote(str(value), safe='')}"
        links.append({"label": f"{label} {value}", "href": href})

    if entry.order_id:
        search("Order", "orders_order", entry.order_id)
    if payload.get("payment_id"):
        search("Payment", "payments_payment", payload["payment_id"])
    elif entry.order_id and entry.producer == "payments":
        search("Payments of order", "payments_payment", entry.order_id)
    skus = [payload.get("sku")] + [line.get("sku") for line in payload.get("lines") or [] if isinstance(line, dict)]
    for sku in dict.fromkeys(s for s in skus if s):
        search("Product", "inventory_product", sku)
    links.append({"label": "This log entry", "href": reverse("admin:dashboard_logentry_change", args=[entry.seq])})
    return links


def event_detail(event_id: str) -> dict | None:
    """One event: its envelope, the receipts of its deliveries, its causation chain and what it caused."""
    entry = event_entry(event_id)
    if entry is None:
        return None
    return {
        "event": entry.as_message(),
        "receipts": receipt_messages(entry, receipts_of(event_id)),
        "chain": [e.as_message() for e in causation_chain(entry)],
        "caused": [e.as_message() for e in caused_by(event_id)],
        "links": admin_links(entry),
    }


# --- an order's trace --------------------------------------------------------------


def _ms(start, end) -> float | None:
    a, b = parse_or_none(start), parse_or_none(end)
    if a is None or b is None:
        return None
    return round((b - a).total_seconds() * 1000, 1)


def hop_latency(receipt: dict) -> dict:
    """Milliseconds of one delivery: published -> sent -> received -> started -> finished."""
    return {
        "relay_ms": _ms(receipt.get("published_at"), receipt.get("sent_at")),
        "queue_ms": _ms(receipt.get("sent_at") or receipt.get("published_at"), receipt.get("received_at")),
        "handle_ms": _ms(receipt.get("received_at"), receipt.get("finished_at")),
        "published_to_received_ms": _ms(receipt.get("published_at"), receipt.get("received_at")),
        "total_ms": _ms(receipt.get("published_at"), receipt.get("finished_at")),
    }


def _tree(events: list[LogEntry]) -> list[dict]:
    """Nested {event_id, event_type, producer, seq, children} by causation; orphans become roots."""
    nodes = {e.event_id: {"event_id": e.event_id, "event_type": e.event_type, "producer": e.producer,
                          "seq": e.seq, "children": []} for e in events}
    roots = []
    for e in events:
        parent = nodes.get(e.causation_id or "")
        (parent["children"] if parent is not None and e.causation_id != e.event_id else roots).append(nodes[e.event_id])
    return roots


def order_state(order_id: str, events: list[LogEntry]) -> dict:
    """The order as its events tell it: PENDING until OrderConfirmed or OrderRejected."""
    state = {"order_id": order_id, "status": "UNKNOWN", "reason": "", "customer": None, "lines": [],
             "total": None, "payment": None, "stock": None}
    for e in events:
        if e.order_id != order_id:
            continue
        payload = (e.data or {}).get("payload") or {}
        if e.event_type == "OrderRequested":
            state["customer"] = payload.get("customer")
            state["lines"] = payload.get("lines") or []
            if state["status"] == "UNKNOWN":
                state["status"] = "PENDING"
        elif e.event_type in DECISIONS:
            state["status"] = DECISIONS[e.event_type]
            state["reason"] = payload.get("reason", "")
            if payload.get("total") is not None:
                state["total"] = payload["total"]
        elif e.event_type.startswith("Payment"):
            state["payment"] = {"event_type": e.event_type, "amount": payload.get("amount"),
                                "reason": payload.get("reason", "")}
        elif e.event_type.startswith("Stock"):
            state["stock"] = {"event_type": e.event_type, "reason": payload.get("reason", "")}
        elif state["status"] == "UNKNOWN":
            state["status"] = "PENDING"
    return state


def trace(order_id: str) -> dict | None:
    """Every event and receipt of the order's flow (its correlation ids), with latencies,
    the causation tree and the order's state. Reads the dashboard log only."""
    correlation_ids = list(
        LogEntry.objects.using(DB).filter(order_id=order_id).order_by().values_list("correlation_id", flat=True).distinct()
    )
    if not correlation_ids:
        return None
    rows = list(LogEntry.objects.using(DB).filter(correlation_id__in=correlation_ids).order_by("seq")[:MAX_TRACE_ENTRIES])
    events = [r for r in rows if r.kind == LogEntry.EVENT]
    receipts: dict[str, list[dict]] = {}
    for r in rows:
        if r.kind == LogEntry.RECEIPT:
            receipts.setdefault(r.event_id, []).append({**r.as_message(), "latency": hop_latency(r.data)})
        elif (own := r.own_receipt_message()) is not None:
            receipts.setdefault(r.event_id, []).append({**own, "latency": hop_latency(own["receipt"])})
    for items in receipts.values():
        items.sort(key=lambda m: m["seq"])
    # In the order things happened (the log's order is the order the dashboard heard of them).
    by_time = sorted(events, key=lambda e: (parse_or_none((e.data or {}).get("occurred_at")) or e.recorded_at, e.seq))
    timeline = [{**e.as_message(), "receipts": receipts.pop(e.event_id, [])} for e in by_time]
    requested = next((e.data for e in by_time if e.event_type == "OrderRequested" and isinstance(e.data, dict)), {})
    return {
        "order_id": order_id,
        "correlation_ids": correlation_ids,
        # The OpenTelemetry trace of the order, when the process that took it traced (eventbus/tracing.py).
        "trace_id": trace_id_of(requested.get("traceparent")),
        "last_seq": rows[-1].seq if rows else 0,
        "state": order_state(order_id, events),
        "timeline": timeline,
        # Receipts whose event the log has not seen (yet): delivered before the dashboard logged it.
        "orphan_receipts": [r for items in receipts.values() for r in items],
        "tree": _tree(events),
    }


# --- contexts: queue depth, consumer online, handled and failed counts --------------


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
