"""Receipts leave a process coalesced: one message to the dashboard per flush, not one task per delivery.

A delivery hands its receipt to this process's buffer and goes on. A thread sends what
piled up once the oldest receipt has waited FLUSH_INTERVAL (20 ms) or MAX_BATCH wait,
and the process flushes at exit (a Celery child on worker_process_shutdown, anything
else at interpreter exit). Along go the rows of the process's local views that changed
since it last sent them, read at most every VIEW_INTERVAL after a delivery touched the
context: the page gets what changed, by key and version, never the whole view.

A receipt lost with a crashed process dims the page, never the data: the inbox has it.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time

from django.db import connections

from eventbus import registry

log = logging.getLogger("eventbus.receipts")

FLUSH_INTERVAL = 0.02
MAX_BATCH = 200
VIEW_INTERVAL = 0.25


def view_rows(view: dict) -> dict:
    """{section: {key: row}} of a view; a section that is not a mapping is one row under key ""."""
    return {section: rows if isinstance(rows, dict) else {"": rows} for section, rows in view.items()}


def view_changes(previous: dict, view: dict) -> dict:
    """The rows of `view` that differ from `previous` (both {section: {key: row}})."""
    changes: dict = {}
    for section, rows in view.items():
        before = previous.get(section, {})
        changed = {key: row for key, row in rows.items() if before.get(key) != row}
        if changed:
            changes[section] = changed
    return changes


class ReceiptBuffer:
    def __init__(self, send):
        self.send = send  # send(receipts, views): one message to the dashboard
        self.pid = None
        self.cond = threading.Condition()

    def _start(self) -> None:
        self.pending: list[dict] = []
        self.first_at: float | None = None
        self.dirty: set[str] = set()
        self.read_at: dict[str, float] = {}
        self.sent_views: dict[str, dict] = {}
        self.pid = os.getpid()
        threading.Thread(target=self._run, name="eventflow-receipts", daemon=True).start()

    def _ensure_started(self) -> None:
        if self.pid != os.getpid():  # first use, or a forked worker child: a thread of our own
            self._start()

    def add(self, receipt: dict | None, *, view_of: str | None = None) -> None:
        """Queue a receipt (may be None) and mark `view_of`'s view as possibly changed."""
        with self.cond:
            self._ensure_started()
            if receipt is not None:
                if not self.pending:
                    self.first_at = time.monotonic()
                self.pending.append(receipt)
            if view_of and registry.view_of(view_of) is not None:
                self.dirty.add(view_of)
            self.cond.notify()

    def _due(self, now: float) -> float | None:
        """Seconds until the next flush is due (<= 0: now), None when there is nothing to send."""
        waits = []
        if self.pending:
            waits.append(0.0 if len(self.pending) >= MAX_BATCH else self.first_at + FLUSH_INTERVAL - now)
        waits += [self.read_at.get(c, -VIEW_INTERVAL) + VIEW_INTERVAL - now for c in self.dirty]
        return min(waits) if waits else None

    def _take(self) -> tuple[list[dict], list[str]]:
        now = time.monotonic()
        receipts, self.pending = self.pending, []
        contexts = [c for c in self.dirty if now - self.read_at.get(c, -VIEW_INTERVAL) >= VIEW_INTERVAL]
        for context in contexts:
            self.dirty.discard(context)
            self.read_at[context] = now
        return receipts, contexts

    def _run(self) -> None:
        while True:
            with self.cond:
                while (wait := self._due(time.monotonic())) is None or wait > 0:
                    self.cond.wait(wait)
                receipts, contexts = self._take()
            self._send(receipts, contexts)

    def _read_views(self, contexts: list[str]) -> dict:
        views = {}
        for context in contexts:
            try:
                connections[context].close_if_unusable_or_obsolete()
                rows = view_rows(registry.view_of(context)())
            except Exception:  # a broken view must not stop the receipts
                log.exception("view of %s failed", context)
                continue
            changes = view_changes(self.sent_views.get(context, {}), rows)
            if changes:
                views[context] = changes
                self.sent_views[context] = rows
        return views

    def _send(self, receipts: list[dict], contexts: list[str]) -> None:
        views = self._read_views(contexts) if contexts else {}
        if not receipts and not views:
            return
        try:
            self.send(receipts, views)
        except Exception as exc:  # the deliveries committed; lost receipts only dim the dashboard
            log.warning("%s receipts not sent: %s", len(receipts), exc)
            for context in views:  # send those rows again with the next read
                self.sent_views.pop(context, None)

    def flush(self) -> None:
        """Send everything waiting now, views included (process exit)."""
        if self.pid != os.getpid():
            return
        with self.cond:
            receipts, self.pending = self.pending, []
            contexts, self.dirty = sorted(self.dirty), set()
        self._send(receipts, contexts)


def _send_to_dashboard(receipts: list[dict], views: dict) -> None:
    from eventbus import transport

    transport.send_receipts(receipts, views)


buffer = ReceiptBuffer(_send_to_dashboard)
atexit.register(buffer.flush)


def send_receipt(receipt: dict | None, *, view_of: str | None = None) -> None:
    buffer.add(receipt, view_of=view_of)


def _connect_worker_shutdown() -> None:
    try:
        from celery.signals import worker_process_shutdown, worker_shutdown
    except ImportError:  # pragma: no cover
        return
    worker_process_shutdown.connect(lambda **_: buffer.flush(), weak=False)
    worker_shutdown.connect(lambda **_: buffer.flush(), weak=False)


_connect_worker_shutdown()
