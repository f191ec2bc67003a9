"""deliver(): run a context's handlers for one envelope, exactly once in effect.

The inbox row and everything the handlers write (including the events they
publish) commit in one transaction of the subscriber's database. A redelivery
finds the inbox row and is acknowledged as a duplicate.
"""

from __future__ import annotations

import logging
import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction

from contracts import ContractError, parse_envelope
from contracts.clock import now_iso  # noqa: F401 (the bus imports it from here)
from eventbus import registry, tracing
from eventbus.lineage import current_envelope
from eventbus.models import DeadLetter, InboxMessage

log = logging.getLogger("eventbus.deliver")

OK, DUPLICATE, FAILED, DEAD = "ok", "duplicate", "failed", "dead"

@dataclass
class Outcome:
    outcome: str
    started_at: str
    finished_at: str = ""
    error: str = ""
    extra: dict = field(default_factory=dict)


def _envelope_fields(raw) -> dict:
    raw = raw if isinstance(raw, dict) else {}
    return {
        "event_id": str(raw.get("event_id", "")),
        "event_type": str(raw.get("event_type", "")),
        "producer": str(raw.get("producer", "")),
        "correlation_id": str(raw.get("correlation_id", "")),
        "causation_id": raw.get("causation_id"),
        "published_at": raw.get("occurred_at"),
    }


def dead_letter(context: str, raw, error: str, *, tries: int) -> None:
    fields = _envelope_fields(raw)
    DeadLetter.objects.using(context).create(
        event_id=fields["event_id"][:64],
        event_type=fields["event_type"][:100],
        envelope=raw if isinstance(raw, (dict, list)) else {"raw": repr(raw)},
        error=error,
        tries=tries,
    )


def handle(context: str, raw) -> Outcome:
    """Validate and handle one envelope in `context`. Raises on handler error
    (the caller retries); a contract violation is dead-lettered at once."""
    started = now_iso()
    try:
        envelope = parse_envelope(raw)
    except ContractError as exc:
        reason = f"invalid envelope: {exc}"
        dead_letter(context, raw, reason, tries=1)
        return Outcome(DEAD, started, now_iso(), error=reason)
    handlers = registry.handlers_for(context, envelope.event_type)
    token = current_envelope.set(envelope)
    try:
        with inbox_transaction(context, envelope.event_id, envelope.event_type) as inbox:
            if inbox is None:
                return Outcome(DUPLICATE, started, now_iso())
            for handler in handlers:
                with tracing.handling(handler):  # what it publishes continues this trace
                    handler(envelope.event, envelope)
    finally:
        current_envelope.reset(token)
    # The context's view is read by the receipts' thread, at most a few times a second (eventbus/receipts.py).
    return Outcome(OK, started, now_iso())


@contextmanager
def inbox_transaction(context: str, message_id, message_type: str):
    """One transaction of `context` that starts with the inbox row of an event or command:
    yields the new row, or None when the row is already there (a redelivery: the caller
    writes nothing more). What the caller writes in the block commits with the row, or
    neither does."""
    with transaction.atomic(using=context):
        try:
            with transaction.atomic(using=context):
                row = InboxMessage.objects.using(context).create(event_id=message_id, event_type=message_type)
        except IntegrityError:
            row = None
        yield row


def build_receipt(context: str, raw, outcome: Outcome, *, sent_at: str | None, received_at: str, attempt: int) -> dict:
    receipt = {
        **_envelope_fields(raw),
        "context": context,
        "outcome": outcome.outcome,
        "error": outcome.error,
        "attempt": attempt,
        "sent_at": sent_at,
        "received_at": received_at,
        "started_at": outcome.started_at,
        "finished_at": outcome.finished_at or now_iso(),
    }
    return receipt


def format_error(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()
