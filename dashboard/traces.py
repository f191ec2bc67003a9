"""An order's trace, read from the dashboard log: every event and receipt of its flow,
each delivery's hop latencies, the causation tree, and the order's state as its events tell it."""

from __future__ import annotations

from contracts.clock import parse_or_none
from contracts.envelope import trace_id_of
from dashboard.log_queries import DB
from dashboard.models import LogEntry

MAX_TRACE_ENTRIES = 5000
# The events that decide an order, and the status each gives it.
DECISIONS = {"OrderConfirmed": "CONFIRMED", "OrderRejected": "REJECTED"}


def ms_between(start, end) -> float | None:
    """Milliseconds from one ISO time to another; None when either is missing or malformed."""
    a, b = parse_or_none(start), parse_or_none(end)
    if a is None or b is None:
        return None
    return round((b - a).total_seconds() * 1000, 1)


def hop_latency(receipt: dict) -> dict:
    """Milliseconds of one delivery: published -> sent -> received -> started -> finished."""
    return {
        "relay_ms": ms_between(receipt.get("published_at"), receipt.get("sent_at")),
        "queue_ms": ms_between(receipt.get("sent_at") or receipt.get("published_at"), receipt.get("received_at")),
        "handle_ms": ms_between(receipt.get("received_at"), receipt.get("finished_at")),
        "published_to_received_ms": ms_between(receipt.get("published_at"), receipt.get("received_at")),
        "total_ms": ms_between(receipt.get("published_at"), receipt.get("finished_at")),
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
