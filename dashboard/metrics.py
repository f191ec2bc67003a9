"""The comparison of the lab: per order, how many messages and hops its flow took,
which waits were synchronous, how long it took, and how it ended; per mode, the
aggregate. Read from the dashboard log only.

Counting rules (the design the tests hold the numbers to):
- a *message* is one delivery of an event to a business context (every context
  but the dashboard, whose own copies are observation, not flow),
  one command, or one reply;
- a *synchronous wait* is a command (or the stock query of the hybrid mode):
  its sender blocked until the reply or the timeout;
- *hops* count the messages on the critical path to the decision: each
  synchronous wait is two (command and reply), and the causal chain of events
  that ends in OrderConfirmed/OrderRejected adds one per delivery along it.
  Event-driven, a one-line order that is confirmed takes 2 or 3 hops
  (OrderRequested → PaymentRequested → PaymentAuthorized → OrderConfirmed, or the
  stock branch if it finishes last); command-driven it takes 8 (ReserveStock,
  AuthorizePayment, CommitStock, CapturePayment, each with its reply).
"""

from __future__ import annotations

import statistics
import time

from config.routers import context_names
from contracts.clock import parse_or_none
from dashboard.models import ControlAction, LogEntry
from dashboard.traces import DECISIONS
from eventbus import subscriptions

DB = "dashboard"
QUERIES = {"CheckStock"}
MAX_ORDERS = 500


def order_metrics(rows: list[LogEntry]) -> dict | None:
    """Metrics of one flow (all log entries of its correlation id), or None if it has no order."""
    events = {r.event_id: r for r in rows if r.kind == LogEntry.EVENT}
    commands = [r for r in rows if r.kind == LogEntry.RECEIPT and (r.data or {}).get("kind") == "command"]
    replies = [r for r in rows if r.kind == LogEntry.RECEIPT and (r.data or {}).get("kind") == "reply"]
    business = set(context_names()) - {DB}  # the dashboard's own copies are observation
    deliveries = {(r.event_id, r.context) for r in rows
                  if r.kind == LogEntry.RECEIPT and not (r.data or {}).get("kind") and r.context in business}
    decision = next((e for e in events.values() if e.event_type in DECISIONS), None)
    requested = next((e for e in events.values() if e.event_type == "OrderRequested"), None)
    order_id = (decision or requested).order_id if (decision or requested) else ""
    if not order_id:
        return None
    business_commands = [c for c in commands if c.event_type not in QUERIES]
    mode = "command" if business_commands else "event"
    answered = [r for r in replies if r.outcome not in ("timeout", "unsent", "expired")]
    # The causal chain of events that ends in the decision: one hop per delivery along it.
    chain, cursor = [], decision
    while cursor is not None and len(chain) < 50:
        chain.append(cursor.event_type)
        cursor = events.get(cursor.causation_id or "")
    event_hops = max(len(chain) - 1, 0)
    waits = []
    for command in commands:
        reply = next((r for r in replies if r.event_id == command.event_id), None)
        issued = parse_or_none((command.data or {}).get("published_at"))
        ended = parse_or_none((reply.data or {}).get("finished_at")) if reply else None
        waits.append({
            "command": command.event_type, "owner": command.context,
            "outcome": reply.outcome if reply else "waiting",
            "wait_ms": round((ended - issued).total_seconds() * 1000, 1) if issued and ended else None,
        })
    starts = [t for t in (
        parse_or_none((requested.data or {}).get("occurred_at")) if requested else None,
        *[parse_or_none((c.data or {}).get("published_at")) for c in commands],
    ) if t is not None]
    start = min(starts) if starts else None
    end = parse_or_none((decision.data or {}).get("occurred_at")) if decision else None
    reason = ((decision.data or {}).get("payload") or {}).get("reason", "") if decision else ""
    timed_out = any(r.outcome in ("timeout", "unsent") for r in replies)  # no answer, whatever the cause
    return {
        "order_id": order_id,
        "correlation_id": rows[0].correlation_id if rows else "",
        "mode": mode,
        "stock_check": "remote" if any(c.event_type in QUERIES for c in commands) else "local",
        "status": DECISIONS[decision.event_type] if decision else "PENDING",
        "reason": reason,
        "failed": timed_out,
        "messages": len(deliveries) + len(commands) + len(answered),
        "deliveries": len(deliveries),
        "commands": len(commands),
        "replies": len(answered),
        "synchronous_waits": waits,
        "hops": event_hops + 2 * len(commands),
        "critical_chain": list(reversed(chain)),
        "started_at": start.isoformat() if start else None,
        "latency_ms": round((end - start).total_seconds() * 1000, 1) if start and end else None,
    }


def order_metrics_of(correlation_id: str) -> dict | None:
    rows = list(LogEntry.objects.using(DB).filter(correlation_id=correlation_id).order_by("seq"))
    return order_metrics(rows)


def _paused_intervals() -> dict[str, list[tuple[float, float]]]:
    """(start, end) of every pause per context; an open pause lasts until now."""
    intervals: dict[str, list[tuple[float, float]]] = {}
    open_since: dict[str, float] = {}
    for action in ControlAction.objects.using(DB).order_by("id"):
        stamp = action.created_at.timestamp()
        if action.action == ControlAction.PAUSE:
            open_since.setdefault(action.context, stamp)
        elif action.context in open_since:
            intervals.setdefault(action.context, []).append((open_since.pop(action.context), stamp))
    for context, since in open_since.items():
        intervals.setdefault(context, []).append((since, time.time()))
    return intervals


def _last_reattach() -> tuple[str, float, float] | None:
    """(context, detached at, attached at) of the newest attach that followed a detach."""
    attach = ControlAction.objects.using(DB).filter(action=ControlAction.ATTACH).order_by("-id").first()
    if attach is None:
        return None
    detach = (ControlAction.objects.using(DB).filter(action=ControlAction.DETACH, context=attach.context, id__lt=attach.id)
              .order_by("-id").first())
    if detach is None:
        return None
    return attach.context, detach.created_at.timestamp(), attach.created_at.timestamp()


def decoupling(orders: list[dict]) -> dict | None:
    """The newest detach and attach of a context: orders placed meanwhile, how many of those
    its absence held up (`downtime`: decided only after it was back, or not yet), and the
    events its catch-up replayed. `producer_changes` is 0 by construction — no producer
    names its subscribers (tests/integration/test_decoupling.py greps for it)."""
    last = _last_reattach()
    if last is None:
        return None
    context, detached, attached = last
    meanwhile = [o for o in orders if (s := parse_or_none(o["started_at"])) and detached <= s.timestamp() <= attached]
    held = [o for o in meanwhile if o["latency_ms"] is None
            or parse_or_none(o["started_at"]).timestamp() + o["latency_ms"] / 1000 > attached]
    replayed = subscriptions.states().get(context, {}).get("replayed", 0)
    return {"context": context, "producer_changes": 0, "placed_while_detached": len(meanwhile),
            "downtime": len(held), "replayed": replayed}


def _percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))], 1)


def _aggregate(orders: list[dict]) -> dict:
    latencies = [o["latency_ms"] for o in orders if o["latency_ms"] is not None and o["status"] != "PENDING"]
    decided = [o for o in orders if o["status"] != "PENDING"]
    return {
        "placed": len(orders),
        "confirmed": sum(o["status"] == "CONFIRMED" for o in orders),
        "rejected": sum(o["status"] == "REJECTED" and not o["failed"] for o in orders),
        "failed": sum(o["failed"] for o in orders),
        "pending": sum(o["status"] == "PENDING" for o in orders),
        "latency_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "latency_p95_ms": _percentile(latencies, 0.95),
        "messages_per_order": round(sum(o["messages"] for o in decided) / len(decided), 1) if decided else None,
        "hops_per_order": round(sum(o["hops"] for o in decided) / len(decided), 1) if decided else None,
        "sync_waits_per_order": round(sum(len(o["synchronous_waits"]) for o in decided) / len(decided), 1) if decided else None,
    }


def comparison(*, after_seq: int = 0, limit: int = MAX_ORDERS) -> dict:
    """Per mode, over the newest `limit` orders logged after `after_seq`: everything, and
    the orders placed while a context was paused."""
    correlation_ids = list(
        LogEntry.objects.using(DB)
        .filter(kind=LogEntry.EVENT, seq__gt=after_seq, event_type__in=[*DECISIONS, "OrderRequested"])
        .order_by("-seq").values_list("correlation_id", flat=True)[: limit * 3]
    )
    wanted = list(dict.fromkeys(correlation_ids))[:limit]
    rows_by_flow: dict[str, list[LogEntry]] = {}
    for row in LogEntry.objects.using(DB).filter(correlation_id__in=wanted).order_by("seq"):
        rows_by_flow.setdefault(row.correlation_id, []).append(row)
    orders = [m for m in (order_metrics(rows) for rows in rows_by_flow.values()) if m is not None]
    pauses = _paused_intervals()

    def offline_during(order: dict) -> list[str]:
        started = parse_or_none(order["started_at"])
        if started is None:
            return []
        stamp = started.timestamp()
        return sorted(c for c, spans in pauses.items() if any(a <= stamp <= b for a, b in spans))

    for order in orders:
        order["offline_contexts"] = offline_during(order)
    result = {"modes": {}, "orders": len(orders), "decoupling": decoupling(orders)}
    for mode in ("event", "command"):
        mine = [o for o in orders if o["mode"] == mode]
        result["modes"][mode] = {
            "all": _aggregate(mine),
            "while_offline": _aggregate([o for o in mine if o["offline_contexts"]]),
        }
    return result
