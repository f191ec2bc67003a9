"""Writes of the dashboard: append to the log, then broadcast what was appended."""

from __future__ import annotations

import asyncio
import logging
import os
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import IntegrityError, transaction

from dashboard.models import ContextView, LogEntry

log = logging.getLogger("dashboard")

GROUP = "events"
DB = "dashboard"


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


def broadcast(entries: list[LogEntry]) -> None:
    """Send appended entries to every connected websocket (best effort: clients fill gaps by seq)."""
    layer = get_channel_layer()
    if layer is None or not entries:
        return
    items = [entry.as_message() for entry in entries]
    try:
        if type(layer).__module__.startswith("channels_redis"):
            _broadcaster.submit(layer, items)
        else:  # the in-memory layer of tests lives on its caller's loop
            async_to_sync(layer.group_send)(GROUP, {"type": "log.entries", "items": items})
    except Exception as exc:
        log.warning("broadcast of %s entries failed: %s", len(entries), exc)


def _append(**fields) -> LogEntry | None:
    try:
        with transaction.atomic(using=DB):
            return LogEntry.objects.using(DB).create(**fields)
    except IntegrityError:
        return None  # already logged: a redelivery


def order_id_of(payload) -> str:
    """The order an event is about (payload.order_id), or "" (indexed: traces look orders up by it)."""
    value = payload.get("order_id") if isinstance(payload, dict) else None
    return value[:64] if isinstance(value, str) else ""


def log_event(envelope) -> LogEntry | None:
    """Append an envelope to the log (called by the dashboard's handler for every event)."""
    entry = _append(
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
    if entry is not None:
        transaction.on_commit(lambda: broadcast([entry]), using=DB)
    return entry


def log_receipt(receipt: dict) -> LogEntry | None:
    """Append a delivery receipt; keep the context's latest local view."""
    key = ":".join(
        str(receipt.get(k, "")) for k in ("event_id", "context", "attempt", "outcome", "finished_at")
    )
    with transaction.atomic(using=DB):
        entry = _append(
            entry_key=f"receipt:{key}"[:200],
            kind=LogEntry.RECEIPT,
            event_id=str(receipt.get("event_id", ""))[:64],
            event_type=str(receipt.get("event_type", ""))[:100],
            producer=str(receipt.get("producer", ""))[:50],
            context=str(receipt.get("context", ""))[:50],
            correlation_id=str(receipt.get("correlation_id", ""))[:64],
            causation_id=receipt.get("causation_id"),
            outcome=str(receipt.get("outcome", ""))[:20],
            data=receipt,
        )
        if entry is not None and isinstance(receipt.get("view"), dict):
            ContextView.objects.using(DB).update_or_create(
                context=entry.context, defaults={"view": receipt["view"], "seq": entry.seq}
            )
    if entry is not None:
        broadcast([entry])
    return entry
