"""Celery entry points of the bus. They load, call, and report; the logic is in delivery.py."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings

from eventbus import registry, transport
from eventbus import telemetry
from eventbus.delivery import DEAD, FAILED, Outcome, build_receipt, dead_letter, format_error, handle, now_iso

log = logging.getLogger("eventbus.tasks")


@shared_task(name=transport.DELIVER_TASK, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def deliver(self, context: str, envelope: dict, sent_at: str | None = None, attempt: int = 1) -> str:
    received_at = now_iso()
    try:
        outcome = handle(context, envelope)
    except Exception as exc:
        error = format_error(exc)
        max_tries = settings.EVENTFLOW_MAX_TRIES
        if attempt >= max_tries:
            log.error("%s: %s dead after %s tries: %s", context, envelope.get("event_id"), attempt, error)
            dead_letter(context, envelope, error, tries=attempt)
            outcome = Outcome(DEAD, received_at, now_iso(), error=error)
        else:
            delay = settings.EVENTFLOW_RETRY_BACKOFF * (2 ** (attempt - 1))
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


@shared_task(name=transport.RECEIPT_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def receipt(receipt: dict) -> None:
    for handler in registry.receipt_handlers():
        handler(receipt)


# The command task lives with the command transport; importing it registers it with Celery.
from eventbus import commands  # noqa: E402,F401
