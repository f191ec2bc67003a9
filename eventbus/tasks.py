"""Celery entry points of the bus. They load, call, and report; the logic is in delivery.py
(one event), ingest.py (a batching context) and receipts.py (coalesced receipts)."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import task_prerun
from django.conf import settings
from django.db import OperationalError, connections

from eventbus import broker, ingest, receipts, registry, telemetry, tracing, transport
from eventbus.delivery import DEAD, DUPLICATE, FAILED, Outcome, build_receipt, dead_letter, format_error, handle, now_iso
from eventbus.models import InboxMessage

log = logging.getLogger("eventbus.tasks")


# With BATCHING set, a batching context's messages skip the task body in a worker:
# eventbus/batching.py hands what waits to the pool as one job (write_or_fall_back
# below). None: each delivery and receipts message is its own batch (eventbus/ingest.py).
# A worker that reconnects to a restarted Redis broker may not consume again (Celery's
# Redis transport, celery#8030); `make run` restarts its workers then (devstack/run.py).
BATCHING = "eventbus.batching:strategy"
STRATEGY = {"Strategy": BATCHING} if BATCHING else {}


@shared_task(name=transport.DELIVER_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             **STRATEGY)
@tracing.traced_delivery  # a span continuing the envelope's trace, when this process traces
def deliver(self, context: str, envelope: dict, sent_at: str | None = None, attempt: int = 1) -> str:
    received_at = now_iso()
    poisoned = _poisoned(self.request, context, envelope, attempt)
    if poisoned is None and registry.batch_writer(context) is not None:
        return deliver_batched(context, envelope, sent_at=sent_at, received_at=received_at, attempt=attempt)
    try:
        outcome = poisoned or handle(context, envelope)
    except Exception as exc:
        outcome = failed(context, envelope, exc, sent_at=sent_at, received_at=received_at, attempt=attempt)
    built = build_receipt(context, envelope, outcome, sent_at=sent_at, received_at=received_at, attempt=attempt)
    telemetry.delivery_done(built)
    # Coalesced with the process's other receipts; a changed view rides along (<= 4 reads a second).
    receipts.send_receipt(built, view_of=context if outcome.outcome == "ok" else None)
    return outcome.outcome


def deliver_batched(context: str, envelope: dict, *, sent_at, received_at: str, attempt: int) -> str:
    """The event joins this worker's next batch; its receipt is written with it."""
    try:
        receipt = ingest.batcher(context).submit(
            ingest.Delivery(envelope, sent_at=sent_at, received_at=received_at, attempt=attempt))
        telemetry.delivery_done(receipt)
        return receipt["outcome"]
    except Exception as exc:
        outcome = failed(context, envelope, exc, sent_at=sent_at, received_at=received_at, attempt=attempt)
        built = build_receipt(context, envelope, outcome, sent_at=sent_at, received_at=received_at, attempt=attempt)
        try:
            ingest.batcher(context).submit(ingest.Receipts([built], {}))
        except Exception as again:  # the log is unwritable: the retry above still comes
            log.warning("%s: receipt for %s not written: %s", context, envelope.get("event_id"), again)
        return outcome.outcome


def write_or_fall_back(context: str, batch: list) -> list[str]:
    """Write a batch in one transaction; if that fails, each message alone, so one bad
    message fails alone (a delivery is retried or dead-lettered as in deliver())."""
    try:
        return [r["outcome"] if r else "ok" for r in _written(context, batch)]
    except Exception as exc:
        if len(batch) > 1:
            log.warning("%s: batch of %s failed (%s); writing each alone", context, len(batch), exc)
    outcomes = []
    for item in batch:
        try:
            result = _written(context, [item])[0]
            outcomes.append(result["outcome"] if result else "ok")
        except Exception as exc:
            if not isinstance(item, ingest.Delivery):  # lost receipts dim the page, never the data
                log.warning("%s: %s receipts not written: %s", context, len(item.receipts), exc)
                outcomes.append("failed")
                continue
            outcome = failed(context, item.envelope, exc, sent_at=item.sent_at, received_at=item.received_at,
                             attempt=item.attempt)
            built = build_receipt(context, item.envelope, outcome, sent_at=item.sent_at,
                                  received_at=item.received_at, attempt=item.attempt)
            try:
                ingest.write_batch(context, [ingest.Receipts([built], {})])
            except Exception as again:
                log.warning("%s: receipt for %s not written: %s", context, item.envelope.get("event_id"), again)
            outcomes.append(outcome.outcome)
    return outcomes


def _written(context: str, batch: list) -> list:
    """ingest.write_batch, and each delivery it wrote counted in the metrics like deliver()'s."""
    results = ingest.write_batch(context, batch)
    for receipt in results:
        if receipt:
            telemetry.delivery_done(receipt)
    return results


def failed(context: str, envelope: dict, exc: Exception, *, sent_at, received_at: str, attempt: int) -> Outcome:
    """A handler error: send the next attempt with backoff, or dead-letter after the last."""
    error = format_error(exc)
    max_tries = _max_tries(exc)
    if attempt >= max_tries:
        log.error("%s: %s dead after %s tries: %s", context, envelope.get("event_id"), attempt, error)
        dead_letter(context, envelope, error, tries=attempt)
        return Outcome(DEAD, received_at, now_iso(), error=error)
    delay = retry_delay(attempt)
    log.warning("%s: %s failed (try %s of %s), again in %.1fs: %s",
                context, envelope.get("event_id"), attempt, max_tries, delay, error)
    # A new message with the next attempt number; this one is acked when we return.
    transport.send_delivery(context, envelope, sent_at=sent_at or received_at, attempt=attempt + 1, countdown=delay)
    return Outcome(FAILED, received_at, now_iso(), error=error)


def _max_tries(exc: Exception) -> int:
    """A transient database error ("database is locked", a dropped connection) gets more tries
    than a handler's own error before its event is parked."""
    return settings.EVENTFLOW_TRANSIENT_TRIES if isinstance(exc, OperationalError) else settings.EVENTFLOW_MAX_TRIES


def retry_delay(attempt: int) -> float:
    """The backoff before try attempt + 1: doubled each try, never past the longest delay of the
    EVENTFLOW_MAX_TRIES chain, which startup checks stays below the visibility timeout."""
    longest = settings.EVENTFLOW_RETRY_BACKOFF * 2 ** max(settings.EVENTFLOW_MAX_TRIES - 2, 0)
    return min(settings.EVENTFLOW_RETRY_BACKOFF * 2 ** (attempt - 1), longest)


def _poisoned(request, context: str, envelope: dict, attempt: int) -> Outcome | None:
    """A message taken more than EVENTFLOW_MAX_DELIVERIES times never finished: it kills its
    worker (a crash, out of memory), and Redis hands it back forever. Dead-letter it instead.
    Only a redelivery is counted (the broker flags it): a first delivery costs no round trip."""
    message_id = getattr(request, "id", None)
    if not message_id or not (getattr(request, "delivery_info", None) or {}).get("redelivered"):
        return None
    try:
        taken = 1 + broker.times_redelivered(message_id)
    except Exception as exc:  # the count is a safeguard; the broker's hiccup must not stop delivery
        log.warning("%s: delivery count of %s unknown: %s", context, envelope.get("event_id"), exc)
        return None
    if taken <= settings.EVENTFLOW_MAX_DELIVERIES:
        return None
    started = now_iso()
    if InboxMessage.objects.using(context).filter(event_id=str(envelope.get("event_id", ""))).exists():
        return Outcome(DUPLICATE, started, now_iso())  # it was handled; its worker died before the ack
    error = f"taken {taken} times without finishing (it kills its worker); dead-lettered"
    log.error("%s: %s %s", context, envelope.get("event_id"), error)
    dead_letter(context, envelope, error, tries=attempt)
    return Outcome(DEAD, started, now_iso(), error=error)


@shared_task(name=transport.RECEIPTS_TASK, bind=True, acks_late=True, reject_on_worker_lost=True,
             ignore_result=True, max_retries=5, **STRATEGY)
def receipts_task(self, items: list, views: dict | None = None) -> None:
    """Receipts coalesced by a process (eventbus/receipts.py), with its changed view rows."""
    items = items if isinstance(items, list) else []
    views = views if isinstance(views, dict) else {}
    try:
        record_receipts(items, views)
    except Exception as exc:  # the log is unwritable for now
        raise self.retry(exc=exc, countdown=0.5 * 2 ** self.request.retries)


def record_receipts(items: list, views: dict) -> None:
    context = transport.RECEIPT_QUEUE
    if registry.batch_writer(context) is not None:
        ingest.batcher(context).submit(ingest.Receipts(items, views))
        return
    for item in items:
        for handler in registry.receipt_handlers():
            handler(item)


@shared_task(name=transport.RECEIPT_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
             **STRATEGY)
def receipt(receipt: dict) -> None:
    """One receipt (messages sent before receipts were coalesced)."""
    record_receipts([receipt], {})


@task_prerun.connect(weak=False)
def drop_broken_connections(**_) -> None:
    """Connections outlive tasks (CELERY_DB_REUSE_MAX): one an earlier task's error left unusable goes."""
    for conn in connections.all(initialized_only=True):
        if conn.errors_occurred:
            if conn.is_usable():
                conn.errors_occurred = False
            else:
                conn.close()


# The command task lives with the command transport; importing it registers it with Celery.
from eventbus import commands  # noqa: E402,F401
