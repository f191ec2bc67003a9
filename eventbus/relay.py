"""The relay: after commit, send each outbox row to every subscribing context's queue.

Rows the after-commit send could not hand to the broker (broker down, process
killed between commit and send) stay unsent; the sweep sends them later. A sent
row stays unconfirmed until every subscriber has the event in its inbox; a row
only dead letters lack is parked (not resent) until they are retried. If the
broker lost the deliveries (a new broker epoch, or the event's sent mark, written
after its deliveries, is gone: a lost tail of writes), or the row waited longer
than EVENTFLOW_REDELIVER_AFTER while the subscriber's queue is empty (a worker
killed as it took the message), the sweep sends it again to the subscribers that
lack it. The sweep walks the unconfirmed rows page by page, so stuck rows never
starve newer ones. Delivery is at-least-once; inboxes dedupe.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from config.routers import context_names
from contracts.clock import iso
from eventbus import broker, registry, subscriptions, transport
from eventbus import tracing
from eventbus.models import DeadLetter, InboxMessage, OutboxMessage

log = logging.getLogger("eventbus.relay")

_epoch_cache: tuple[float, str] = (0.0, "")


def current_epoch() -> str:
    """The broker epoch, asked at most once a second per process."""
    global _epoch_cache
    checked, value = _epoch_cache
    if time.monotonic() - checked > 1.0 or not value:
        value = broker.epoch()
        _epoch_cache = (time.monotonic(), value)
    return value


def relay_after_commit(context: str, envelope: dict) -> None:
    """Send the envelope once the caller's transaction commits (the sweep covers a failure)."""
    transaction.on_commit(lambda: send_envelope(context, envelope), using=context)


@tracing.traced_send  # a child of the envelope's publish span, when this process traces
def _deliver_to(subscribers, envelope: dict) -> str:
    """Hand one delivery per subscriber to the broker; returns the broker epoch. Raises if it is down."""
    epoch = current_epoch()
    sent_at = iso(timezone.now())
    # The observer last: a business subscriber's delivery should not wait behind the dashboard's send.
    ordered = sorted(subscribers, key=lambda s: s == transport.RECEIPT_QUEUE)
    transport.send_deliveries(ordered, envelope, sent_at=sent_at)
    broker.mark_sent([envelope["event_id"]])  # after the deliveries: see confirm_and_redeliver
    return epoch


def send_envelope(context: str, envelope: dict) -> bool:
    """The after-commit send of a fresh row, from the envelope in memory (no re-read)."""
    unsent = OutboxMessage.objects.using(context).filter(event_id=envelope["event_id"], sent_at__isnull=True)
    return _send_and_mark(context, envelope, subscriptions.subscribers_of(envelope["event_type"]), unsent, attempts=1)


def send_row(context: str, row: OutboxMessage, subscribers: list[str] | None = None) -> bool:
    """Send one row to `subscribers` (default: all of them); mark it sent. False if the broker refused."""
    this_row = OutboxMessage.objects.using(context).filter(pk=row.pk)
    if _send_and_mark(context, row.envelope,
                      subscriptions.subscribers_of(row.event_type) if subscribers is None else subscribers,
                      this_row, attempts=row.send_attempts + 1):
        return True
    this_row.update(send_attempts=row.send_attempts + 1)
    return False


def _send_and_mark(context: str, envelope: dict, subscribers, row, *, attempts: int) -> bool:
    """Hand `envelope` to `subscribers`' queues, then mark `row` (its outbox row, a queryset)
    sent, in one UPDATE. False if the broker refused: the row stays unsent for the sweep."""
    try:
        epoch = _deliver_to(subscribers, envelope)
    except Exception as exc:  # broker down: leave it for the sweep
        log.warning("relay: %s %s not sent (%s); the sweep will retry", context, envelope["event_id"], exc)
        return False
    row.update(sent_at=timezone.now(), send_attempts=attempts, broker_epoch=epoch)
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


def _received_by(subscriber: str, event_ids: list) -> tuple[set[str], set[str]]:
    """Event ids `subscriber` has handled (its inbox) and has parked (dead letters not yet retried).
    A dead letter is not a receipt: the event still has to be handled."""
    handled = InboxMessage.objects.using(subscriber).filter(event_id__in=event_ids).values_list("event_id", flat=True)
    parked = (DeadLetter.objects.using(subscriber).filter(event_id__in=[str(e) for e in event_ids], retried_at__isnull=True)
              .values_list("event_id", flat=True))
    return {str(e) for e in handled}, {str(e) for e in parked}


# Where each context's next confirm pass starts: it walks all unconfirmed rows page by
# page, so rows that stay unconfirmed (a paused subscriber) never starve newer ones.
_confirm_cursor: dict[str, int] = {}


def _next_page(context: str, rows, limit: int) -> list[OutboxMessage]:
    after = _confirm_cursor.get(context, 0)
    page = list(rows.filter(id__gt=after).order_by("id")[:limit])
    if len(page) < limit and after:  # the end: wrap around to the oldest rows
        page += list(rows.filter(id__lte=after).order_by("id")[:limit - len(page)])
    _confirm_cursor[context] = page[-1].id if page else 0
    return page


def confirm_and_redeliver(context: str, *, older_than: float, redeliver_after: float, limit: int = 500) -> tuple[int, int]:
    """Confirm sent rows every subscriber has handled; park rows the missing subscribers
    dead-lettered; resend lost ones. Returns (confirmed, resent)."""
    now = timezone.now()
    rows = _next_page(context, OutboxMessage.objects.using(context).filter(
        sent_at__isnull=False, confirmed_at__isnull=True, parked_at__isnull=True,
        sent_at__lte=now - timedelta(seconds=older_than)), limit)
    if not rows:
        return 0, 0
    wanted = {row.pk: set(subscriptions.subscribers_of(row.event_type)) for row in rows}
    handled: dict[str, set[str]] = {}
    parked: dict[str, set[str]] = {}
    for subscriber in set().union(*wanted.values()):
        ids = [row.event_id for row in rows if subscriber in wanted[row.pk]]
        handled[subscriber], parked[subscriber] = _received_by(subscriber, ids)
    epoch = current_epoch()
    depths: dict[str, int] | None = None
    marks: set[str] | None = None
    confirmed, parked_rows, resent = [], [], 0
    for row in rows:
        event_id = str(row.event_id)
        missing = sorted(s for s in wanted[row.pk] if event_id not in handled[s])
        if not missing:
            confirmed.append(row.pk)
            continue
        missing = [s for s in missing if event_id not in parked[s]]
        if not missing:
            parked_rows.append(row.pk)  # only dead letters lack it; a retry unparks it
            continue
        if row.sent_at < now - timedelta(seconds=settings.EVENTFLOW_RETENTION_INBOX):
            continue  # its subscribers' inbox rows may be pruned: a resend could apply it twice
        if marks is None:
            marks = broker.sent_marks([r.event_id for r in rows])
        lost_with_broker = row.broker_epoch != epoch or event_id not in marks
        overdue = row.sent_at <= now - timedelta(seconds=redeliver_after)
        if overdue and not lost_with_broker:
            # Overdue and its subscriber's queue is empty: the message is not waiting
            # there (a worker killed between taking it and recording it took it along).
            # A subscriber with a backlog, or paused, still has it coming.
            if depths is None:
                depths = broker.queue_depths(sorted(set().union(*wanted.values())))
            missing = [s for s in missing if not depths.get(s)]
            overdue = bool(missing)
        if lost_with_broker or overdue:
            log.warning("relay: resending %s %s to %s (%s)", context, row.event_id, ", ".join(missing),
                        "the broker lost it" if lost_with_broker else "overdue")
            if not send_row(context, row, missing):
                break
            resent += 1
    if confirmed:
        OutboxMessage.objects.using(context).filter(pk__in=confirmed).update(confirmed_at=now)
        done = set(confirmed)
        broker.clear_sent_marks([row.event_id for row in rows if row.pk in done])
    if parked_rows:
        OutboxMessage.objects.using(context).filter(pk__in=parked_rows).update(parked_at=now)
    return len(confirmed), resent


def sweep_once() -> dict[str, int]:
    """Send rows left unsent past the grace period, confirm or resend sent ones; per context, rows sent."""
    grace = settings.EVENTFLOW_SWEEP_GRACE
    result = {}
    for context in context_names():
        try:  # one context's database failing must not stop the sweep of the others
            sent = send_pending(context, older_than=grace)
            _, resent = confirm_and_redeliver(context, older_than=grace,
                                              redeliver_after=settings.EVENTFLOW_REDELIVER_AFTER)
            result[context] = sent + resent
        except Exception:
            log.exception("relay sweep of %s failed; the other contexts go on", context)
            result[context] = 0
    run_context_sweeps()
    return result


def run_context_sweeps() -> None:
    """The contexts' own periodic jobs (registry.register_sweep), each failing alone."""
    for context, jobs in registry.sweeps().items():
        for job in jobs:
            try:
                job()
            except Exception:
                log.exception("sweep job %s of %s failed", getattr(job, "__name__", job), context)
