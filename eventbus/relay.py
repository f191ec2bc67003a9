"""The relay: after commit, send each outbox row to every subscribing context's queue.

Rows the after-commit send could not deliver to the broker (broker down, process
killed between commit and send) stay unsent; the sweep sends them later.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from eventbus import registry, transport
from eventbus.models import OutboxMessage

log = logging.getLogger("eventbus.relay")


def relay_after_commit(context: str, event_id: str) -> None:
    transaction.on_commit(lambda: send_pending(context, event_ids=[event_id]), using=context)


def _iso(moment) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def send_row(context: str, row: OutboxMessage) -> bool:
    """Send one row to each subscriber; mark it sent. False if the broker refused."""
    sent_at = _iso(timezone.now())
    try:
        for subscriber in registry.subscribers_of(row.event_type):
            transport.send_delivery(subscriber, row.envelope, sent_at=sent_at)
    except Exception as exc:  # broker down: leave it for the sweep
        OutboxMessage.objects.using(context).filter(pk=row.pk).update(send_attempts=row.send_attempts + 1)
        log.warning("relay: %s %s not sent (%s); the sweep will retry", context, row.event_id, exc)
        return False
    OutboxMessage.objects.using(context).filter(pk=row.pk).update(
        sent_at=timezone.now(), send_attempts=row.send_attempts + 1
    )
    return True


def send_pending(context: str, *, event_ids: list[str] | None = None, older_than: float | None = None, limit: int = 500) -> int:
    """Send unsent rows of `context`'s outbox; returns how many left for the broker."""
    rows = OutboxMessage.objects.using(context).filter(sent_at__isnull=True)
    if event_ids is not None:
        rows = rows.filter(event_id__in=event_ids)
    if older_than is not None:
        rows = rows.filter(created_at__lte=timezone.now() - timedelta(seconds=older_than))
    sent = 0
    for row in rows.order_by("id")[:limit]:
        if not send_row(context, row):
            break  # the broker is down; try again on the next sweep
        sent += 1
    return sent


def sweep_once() -> dict[str, int]:
    """Resend every context's rows left unsent past the grace period."""
    grace = settings.EVENTFLOW_SWEEP_GRACE
    return {
        context: send_pending(context, older_than=grace)
        for context in settings.DATABASES
        if context != "default"
    }
