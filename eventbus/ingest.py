"""Batch ingest: a context that registered a batch writer (the dashboard) takes many
messages per transaction.

In a worker, the batching strategy (eventbus/batching.py, eventbus.tasks.BATCHING) hands
everything waiting to the pool as one job that calls write_batch directly. Where a task
body runs instead (a worker without the strategy, eager tests), the tasks (deliveries and
receipt messages) hand their message to this process's Batcher and wait. One thread
writes whatever is waiting as one batch — it never waits to fill one, so a quiet system
pays no latency and a busy one gets big batches — in one transaction: inbox rows for the
new events (a redelivery finds its row and is a duplicate, so a redelivered batch is a
no-op), then the writer's own bulk insert. Each task returns, and its message is
acknowledged, only once the batch holding it committed: at-least-once is kept. A batch
that fails is written again one message at a time, so one bad message fails alone.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading

from django.db import connections, transaction

from contracts import ContractError, parse_envelope
from eventbus import registry
from eventbus.delivery import DEAD, DUPLICATE, OK, Outcome, build_receipt, dead_letter, now_iso
from eventbus.models import InboxMessage

log = logging.getLogger("eventbus.ingest")

MAX_BATCH = 500


class Delivery:
    """An event for the batching context, with what its receipt needs."""

    def __init__(self, envelope, *, sent_at, received_at, attempt):
        self.envelope, self.sent_at, self.received_at, self.attempt = envelope, sent_at, received_at, attempt


class Receipts:
    """A message of receipts and changed view rows from some process."""

    def __init__(self, receipts, views):
        self.receipts, self.views = receipts, views


def write_batch(context: str, items: list) -> list:
    """Write `items` in one transaction of `context`; per item, its receipt (a Delivery) or None."""
    writer = registry.batch_writer(context)
    started = now_iso()
    results: list = [None] * len(items)
    parsed = {}
    for i, item in enumerate(items):
        if isinstance(item, Delivery):
            try:
                parsed[i] = parse_envelope(item.envelope)
            except ContractError as exc:
                results[i] = Outcome(DEAD, started, error=f"invalid envelope: {exc}")
    with transaction.atomic(using=context):
        ids = {str(env.event_id) for env in parsed.values()}
        seen = {str(e) for e in InboxMessage.objects.using(context).filter(event_id__in=ids).values_list("event_id", flat=True)}
        fresh = []
        for i, env in parsed.items():
            if str(env.event_id) in seen:
                results[i] = Outcome(DUPLICATE, started)
            else:
                seen.add(str(env.event_id))
                fresh.append(InboxMessage(event_id=env.event_id, event_type=env.event_type))
                results[i] = Outcome(OK, started)
        InboxMessage.objects.using(context).bulk_create(fresh)
        entries, views = [], {}
        finished = now_iso()
        for i, item in enumerate(items):
            if isinstance(item, Receipts):
                entries += [("receipt", r) for r in item.receipts if isinstance(r, dict)]
                for ctx, changes in (item.views or {}).items():
                    merged = views.setdefault(ctx, {})
                    for section, rows in changes.items():
                        merged.setdefault(section, {}).update(rows)
                continue
            outcome = results[i]
            outcome.finished_at = finished
            if outcome.outcome == DEAD:
                dead_letter(context, item.envelope, outcome.error, tries=1)
            results[i] = build_receipt(context, item.envelope, outcome, sent_at=item.sent_at,
                                       received_at=item.received_at, attempt=item.attempt)
            if outcome.outcome == OK:  # the event's row is this delivery's receipt
                entries.append(("event", parsed[i], results[i]))
            else:
                entries.append(("receipt", results[i]))
        writer(entries, views)
    return results


class Batcher:
    """One per process: tasks submit and wait; a thread writes what waits as one batch."""

    def __init__(self, context: str):
        self.context = context
        self.pid = None
        self.cond = threading.Condition()

    def submit(self, item):
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self.cond:
            if self.pid != os.getpid():  # first use, or a forked worker child
                self.pending: list = []
                self.pid = os.getpid()
                threading.Thread(target=self._run, name=f"eventflow-ingest-{self.context}", daemon=True).start()
            self.pending.append((item, future))
            self.cond.notify()
        return future.result()

    def _run(self) -> None:
        while True:
            with self.cond:
                while not self.pending:
                    self.cond.wait()
                batch, self.pending = self.pending[:MAX_BATCH], self.pending[MAX_BATCH:]
            self._write(batch)

    def _write(self, batch) -> None:
        try:
            connections[self.context].close_if_unusable_or_obsolete()
            results = write_batch(self.context, [item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            log.warning("batch of %s failed (%s): writing it one by one", len(batch), exc)
            for one in batch:
                self._write([one])
            return
        for (_, future), result in zip(batch, results):
            future.set_result(result)


_batchers: dict[str, Batcher] = {}
_lock = threading.Lock()


def batcher(context: str) -> Batcher:
    with _lock:
        if context not in _batchers:
            _batchers[context] = Batcher(context)
        return _batchers[context]
