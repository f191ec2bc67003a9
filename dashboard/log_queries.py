"""Reads of the dashboard log: entries filtered and searched, the last seq, the local
views, and one event's detail (its receipts, causation chain, what it caused, admin links)."""

from __future__ import annotations

from urllib.parse import quote

from django.db.models import Q
from django.urls import reverse

from dashboard.models import ContextView, LogEntry

DB = "dashboard"
MAX_LIMIT = 1000
MAX_CHAIN = 100


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
