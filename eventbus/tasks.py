"""Celery entry points of the bus. They load, call, and report; the logic is in delivery.py."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import OperationalError

from eventbus import broker, registry, telemetry, transport
from eventbus.delivery import DEAD, DUPLICATE, FAILED, Outcome, build_receipt, dead_letter, format_error, handle, now_iso
from eventbus.models import InboxMessage

log = logging.getLogger("eventbus.tasks")


@shared_task(name=transport.DELIVER_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver(self, context: str, envelope: dict, sent_at: str | None = None, attempt: int = 1) -> str:
    received_at = now_iso()
    try:
        outcome = _poisoned(self.request.id, context, envelope, attempt) or handle(context, envelope)
    except Exception as exc:
        error = format_error(exc)
        max_tries = _max_tries(exc)
        if attempt >= max_tries:
            log.error("%s: %s dead after %s tries: %s", context, envelope.get("event_id"), attempt, error)
            dead_letter(context, envelope, error, tries=attempt)
            outcome = Outcome(DEAD, received_at, now_iso(), error=error)
        else:
            delay = retry_delay(attempt)
            log.warning("%s: %s failed (try %s of %s), again in %.1fs: %s",
                        context, envelope.get("event_id"), attempt, max_tries, delay, error)
            # A new message with the next attempt number; this one is acked when we return.
            transport.send_delivery(context, envelope, sent_at=sent_at or received_at, attempt=attempt + 1, countdown=delay)
            outcome = Outcome(FAILED, received_at, now_iso(), error=error)
    built = build_receipt(context, envelope, outcome, sent_at=sent_at, received_at=received_at, attempt=attempt)
    telemetry.delivery_done(built)
    try:
        if context == transport.RECEIPT_QUEUE:
            receipt.run(built)  # the receipts' own worker: no need for a round trip through the broker
        else:
            transport.send_receipt(built)
    except Exception as exc:  # the delivery itself committed; a lost receipt only dims the dashboard
        log.warning("%s: receipt for %s not sent: %s", context, envelope.get("event_id"), exc)
    return outcome.outcome


def _max_tries(exc: Exception) -> int:
    """A transient database error ("database is locked", a dropped connection) gets more tries
    than a handler's own error before its event is parked."""
    return settings.EVENTFLOW_TRANSIENT_TRIES if isinstance(exc, OperationalError) else settings.EVENTFLOW_MAX_TRIES


def retry_delay(attempt: int) -> float:
    """The backoff before try attempt + 1: doubled each try, never past the longest delay of the
    EVENTFLOW_MAX_TRIES chain, which startup checks stays below the visibility timeout."""
    longest = settings.EVENTFLOW_RETRY_BACKOFF * 2 ** max(settings.EVENTFLOW_MAX_TRIES - 2, 0)
    return min(settings.EVENTFLOW_RETRY_BACKOFF * 2 ** (attempt - 1), longest)


def _poisoned(message_id: str | None, context: str, envelope: dict, attempt: int) -> Outcome | None:
    """A message taken more than EVENTFLOW_MAX_DELIVERIES times never finished: it kills its
    worker (a crash, out of memory), and Redis hands it back forever. Dead-letter it instead."""
    if not message_id:
        return None
    try:
        taken = broker.times_taken(message_id)
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


@shared_task(name=transport.RECEIPT_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def receipt(receipt: dict) -> None:
    for handler in registry.receipt_handlers():
        handler(receipt)


# The command task lives with the command transport; importing it registers it with Celery.
from eventbus import commands  # noqa: E402,F401
