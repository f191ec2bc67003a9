"""Writes of the dashboard: append to the log, then broadcast what was appended."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from dashboard.models import ContextView, LogEntry, ViewChange, ViewCheckpoint
from eventbus import lock_key

log = logging.getLogger("dashboard")

GROUP = "events"
DB = "dashboard"
# Seconds between two checkpoints of a context's whole view (time travel folds from the one before).
CHECKPOINT_SECONDS = 30.0
_checkpointed: dict[str, float] = {}


class _Broadcaster:
    """Sends appended entries to the websocket group from a loop of its own, off the worker's path.

    One loop per worker process runs in a thread; the worker hands it entries and goes
    on (async_to_sync would start a loop and a Redis connection per entry). A single
    sender coroutine drains what piled up into one group message, so the order of
    seq is kept and a burst costs a few sends instead of one per entry. Entries still
    waiting when the process dies are not lost to clients: they refetch gaps by seq.
    """

    MAX_ITEMS_PER_MESSAGE = 500
    MAX_PENDING = 20_000

    def __init__(self):
        self.pid = None
        self.lock = threading.Lock()

    def _start(self, layer) -> None:
        self.layer = layer
        self.pending: list[dict] = []
        self.loop = asyncio.new_event_loop()
        self.wakeup = asyncio.Event()
        threading.Thread(target=self.loop.run_forever, name="dashboard-broadcast", daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._sender(), self.loop)
        self.pid = os.getpid()

    def submit(self, layer, items: list[dict]) -> None:
        with self.lock:
            if self.pid != os.getpid():  # first use, or a forked worker child: a loop of our own
                self._start(layer)
        self.loop.call_soon_threadsafe(self._add, items)

    def _add(self, items: list[dict]) -> None:  # runs in the loop
        self.pending.extend(items)
        if len(self.pending) > self.MAX_PENDING:  # Redis unreachable for long: keep the newest
            del self.pending[: len(self.pending) - self.MAX_PENDING]
        self.wakeup.set()

    async def _sender(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.pending:
                items = self.pending[: self.MAX_ITEMS_PER_MESSAGE]
                del self.pending[: self.MAX_ITEMS_PER_MESSAGE]
                try:
                    await self.layer.group_send(GROUP, {"type": "log.entries", "items": items})
                except Exception as exc:
                    log.warning("broadcast of %s entries failed: %s", len(items), exc)


_broadcaster = _Broadcaster()


def broadcast(entries: list[LogEntry], views: dict | None = None) -> None:
    """Send appended entries (and changed view rows) to every connected websocket
    (best effort: clients fill gaps by seq)."""
    layer = get_channel_layer()
    if layer is None or not (entries or views):
        return
    items = [entry.as_message() for entry in entries]
    if views:
        items.append({"type": "views", "views": views})
    try:
        if type(layer).__module__.startswith("channels_redis"):
            _broadcaster.submit(layer, items)
        else:  # the in-memory layer of tests lives on its caller's loop
            async_to_sync(layer.group_send)(GROUP, {"type": "log.entries", "items": items})
    except Exception as exc:
        log.warning("broadcast of %s entries failed: %s", len(entries), exc)


def order_id_of(payload) -> str:
    """The order an event is about (payload.order_id), or "" (indexed: traces look orders up by it)."""
    value = payload.get("order_id") if isinstance(payload, dict) else None
    return value[:64] if isinstance(value, str) else ""


DELIVERY_FIELDS = ("sent_at", "received_at", "started_at", "finished_at", "attempt")


def _event_entry(envelope, own_receipt: dict | None = None) -> LogEntry:
    return LogEntry(
        delivery={k: own_receipt.get(k) for k in DELIVERY_FIELDS} if own_receipt else None,
        entry_key=f"event:{envelope.event_id}",
        kind=LogEntry.EVENT,
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        producer=envelope.producer,
        context=envelope.producer,
        correlation_id=envelope.correlation_id,
        causation_id=envelope.causation_id,
        order_id=order_id_of(envelope.payload),
        data=envelope.as_dict(),
    )


def _receipt_entry(receipt: dict) -> LogEntry:
    key = ":".join(
        str(receipt.get(k, "")) for k in ("event_id", "context", "attempt", "outcome", "finished_at")
    )
    return LogEntry(
        entry_key=f"receipt:{key}"[:200],
        kind=LogEntry.RECEIPT,
        event_id=str(receipt.get("event_id", ""))[:64],
        event_type=str(receipt.get("event_type", ""))[:100],
        producer=str(receipt.get("producer", ""))[:50],
        context=str(receipt.get("context", ""))[:50],
        correlation_id=str(receipt.get("correlation_id", ""))[:64],
        causation_id=receipt.get("causation_id"),
        outcome=str(receipt.get("outcome", ""))[:20],
        data={k: v for k, v in receipt.items() if k not in LogEntry.RECEIPT_COLUMNS and k != "view"},
    )


def _merge_rows(stored: dict, changes: dict) -> dict:
    """Changed view rows over the stored view, by key; a row with a lower version never replaces a higher one."""
    merged = {section: dict(rows) if isinstance(rows, dict) else rows for section, rows in stored.items()}
    for section, rows in changes.items():
        if not isinstance(rows, dict):
            continue
        target = merged.setdefault(section, {})
        if not isinstance(target, dict):
            target = merged[section] = {}
        for key, row in rows.items():
            old = target.get(key)
            if isinstance(old, dict) and isinstance(row, dict) and "version" in old and "version" in row:
                try:
                    if int(old["version"]) > int(row["version"]):
                        continue
                except (TypeError, ValueError):
                    pass
            target[key] = row
    return merged


def views_merge(views: dict, seq: int = 0) -> None:
    """Fold changed rows into each context's stored view (the snapshot's and /api/contexts/' `view`),
    as of log entry `seq`, and keep them as history for time travel: the changes themselves
    (ViewChange) and, every CHECKPOINT_SECONDS, the whole view (ViewCheckpoint)."""
    for context, changes in views.items():
        if not isinstance(changes, dict) or not changes:
            continue
        name = str(context)[:50]
        row = ContextView.objects.using(DB).filter(context=name).first()
        merged = _merge_rows(row.view if row is not None and isinstance(row.view, dict) else {}, changes)
        ContextView.objects.using(DB).update_or_create(context=name, defaults={"view": merged, "seq": seq})
        change = ViewChange.objects.using(DB).create(seq=seq, context=name, rows=changes)
        if time.monotonic() - _checkpointed.get(name, -CHECKPOINT_SECONDS) >= CHECKPOINT_SECONDS:
            ViewCheckpoint.objects.using(DB).create(context=name, seq=seq, change_id=change.id, view=merged)
            _checkpointed[name] = time.monotonic()


def log_batch(items: list, views: dict | None = None) -> list[LogEntry]:
    """Append events and receipts ([("event", envelope[, the dashboard's own receipt]) |
    ("receipt", dict)], in the order they came) with one bulk insert, fold changed view rows
    in; broadcast after the commit. The dashboard's own ok receipt of an event is kept in
    the event's row (LogEntry.delivery), not in a row of its own.

    An entry already logged (a redelivery) is skipped by its entry_key. The rows are inserted
    in the order given, so seq follows it; the caller's transaction makes the batch one commit.

    The log's sequencer: one writer at a time holds the log from before its rows take their
    seq until its commit, so entries become visible in seq order and a reader by after_seq
    never passes one still to commit, whatever number of dashboard workers write at once.
    """
    rows = [_event_entry(*value) if kind == "event" else _receipt_entry(value[0]) for kind, *value in items]
    with transaction.atomic(using=DB):
        lock_key(DB, "dashboard:log")
        keys = [row.entry_key for row in rows]
        seen = set(LogEntry.objects.using(DB).filter(entry_key__in=keys).values_list("entry_key", flat=True))
        fresh = []
        for row in rows:
            if row.entry_key not in seen:
                seen.add(row.entry_key)
                fresh.append(row)
        created = LogEntry.objects.using(DB).bulk_create(fresh)
        if views:
            newest = created[-1].seq if created else (
                LogEntry.objects.using(DB).order_by("-seq").values_list("seq", flat=True).first() or 0)
            views_merge(views, seq=newest)
        if created or views:
            transaction.on_commit(lambda: broadcast(created, views), using=DB)
    return created


def log_event(envelope) -> LogEntry | None:
    """Append an envelope to the log (the dashboard's handler, when not batching)."""
    created = log_batch([("event", envelope)])
    return created[0] if created else None


def log_receipt(receipt: dict) -> LogEntry | None:
    """Append one delivery receipt (its `view`, if an old message carries one, is not kept)."""
    receipt = {k: v for k, v in receipt.items() if k != "view"}
    created = log_batch([("receipt", receipt)])
    return created[0] if created else None
