"""Dead letters across every context: list them, send them back."""

from __future__ import annotations

import uuid

from django.utils import timezone

from config.routers import context_names

from eventbus import broker, transport
from eventbus.models import DeadLetter, OutboxMessage


def list_dead_letters(*, include_retried: bool = False) -> list[dict]:
    result = []
    for context in context_names():
        rows = DeadLetter.objects.using(context).all()
        if not include_retried:
            rows = rows.filter(retried_at__isnull=True)
        for row in rows:
            result.append({
                "id": row.id, "context": context, "event_id": row.event_id, "event_type": row.event_type,
                "error": row.error, "tries": row.tries, "created_at": row.created_at.isoformat(),
                "retried_at": row.retried_at.isoformat() if row.retried_at else None,
            })
    return sorted(result, key=lambda r: r["created_at"], reverse=True)


def retry_dead_letters(*, context: str | None = None, ids: list[int] | None = None) -> list[int]:
    """Requeue dead letters (a fresh first try each); returns the ids sent."""
    if context is not None and context not in context_names():
        raise ValueError(f"unknown context {context!r}")
    retried = []
    for alias in [context] if context else context_names():
        rows = DeadLetter.objects.using(alias).filter(retried_at__isnull=True)
        if ids:
            rows = rows.filter(id__in=ids)
        for row in rows:
            transport.send_delivery(alias, row.envelope, sent_at=timezone.now().isoformat())
            DeadLetter.objects.using(alias).filter(pk=row.pk).update(retried_at=timezone.now())
            _unpark(row)
            retried.append(row.id)
    return retried


def _unpark(letter: DeadLetter) -> None:
    """The producer's outbox row waits for this delivery again: the sweep watches it (and
    resends it if this retry is lost) until the subscriber handles it or parks it anew."""
    producer = letter.envelope.get("producer") if isinstance(letter.envelope, dict) else None
    try:
        uuid.UUID(letter.event_id)
    except ValueError:
        return  # not an event any outbox holds
    if producer in context_names():
        broker.mark_sent([letter.event_id])
        OutboxMessage.objects.using(producer).filter(event_id=letter.event_id, confirmed_at__isnull=True).update(
            parked_at=None, sent_at=timezone.now())
