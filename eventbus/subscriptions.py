"""Subscriptions as data: which contexts receive which event types, changed while the system runs.

Each context declares what it can handle in its handlers.py (eventbus.registry). That
declaration seeds a `Subscription` row in the context's own database; the relay routes
by the rows (`subscribers_of`), read at most once per ROUTES_TTL seconds per process.

- detach(context): the row says detached, so new events are no longer routed to it (a
  process may route for up to ROUTES_TTL more seconds), and its workers stop consuming.
  Unlike pause, where events wait in its queue, nothing waits for it.
- attach(context): the row says attached again and the context catches up: every event
  of its types in the producers' outboxes that it has not handled (its inbox says) since
  it was detached — the whole retained log for a context never attached (a row with
  no `detached_at`, as a context added to a running system is created) — is
  sent to its queue in each producer's order, then it goes on live. The sweep repeats
  the pass until nothing is missing (events routed meanwhile, a replayed message lost);
  the inbox makes any overlap a no-op.
- The replay reads the outboxes, so it reaches back only as far as they keep events:
  `window()` = the shorter of EVENTFLOW_RETENTION_OUTBOX and EVENTFLOW_RETENTION_INBOX
  (an older event's inbox row may be gone, so "not handled" could not be told). An
  attach whose missed events start before that is refused, naming what is missing.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Q
from django.utils import timezone

from contracts import event_class, event_types
from eventbus import registry, transport
from eventbus.models import DeadLetter, InboxMessage, OutboxMessage, Subscription

log = logging.getLogger("eventbus.subscriptions")

ROUTES_TTL = 1.0
# Rows sent up to this long before a detach may have been routed without the context
# (another process's routes were up to ROUTES_TTL old): the replay covers them too.
DETACH_MARGIN = timedelta(seconds=2 * ROUTES_TTL + 1)
# After an attach, the sweep's passes go on at least this long: other processes may
# not route to the context for ROUTES_TTL more seconds.
SETTLE = 3 * ROUTES_TTL
CHUNK = 500

_cache: tuple[float, dict[str, Subscription]] = (0.0, {})


class AttachRefused(RuntimeError):
    """The events an attach would have to replay are older than the replay window."""


def window() -> float:
    """Seconds back a replay can reach: the outbox keeps events, the inbox tells handled ones."""
    return min(settings.EVENTFLOW_RETENTION_OUTBOX, settings.EVENTFLOW_RETENTION_INBOX)


def _declared_types(context: str) -> list[str]:
    return sorted(registry.declared_types(context))


def _row(context: str) -> Subscription:
    """The context's row, seeded from its declaration when missing, its types kept in step with it."""
    declared = _declared_types(context)
    row, created = Subscription.objects.using(context).get_or_create(
        context=context, defaults={"event_types": declared})
    if not created and row.event_types != declared:
        row.event_types = declared
        Subscription.objects.using(context).filter(pk=row.pk).update(event_types=declared)
    return row


def rows(*, max_age: float = ROUTES_TTL) -> dict[str, Subscription]:
    """Every declared subscriber's row, read at most every `max_age` seconds per process."""
    global _cache
    checked, cached = _cache
    if cached and time.monotonic() - checked < max_age:
        return cached
    contexts = registry.contexts()
    held = {alias for alias in contexts if connections[alias].connection is not None}
    try:
        fresh = {context: _row(context) for context in contexts}
    finally:
        _release(set(contexts) - held)
    _cache = (time.monotonic(), fresh)
    return fresh


def _release(aliases: set[str]) -> None:
    """Close the PostgreSQL connections the read of the routes opened. Every process that
    publishes reads every context's row each ROUTES_TTL; kept open, that would be one
    server slot per context database in each worker pool process (with 2 workers of 2
    per context, past PostgreSQL's default max_connections of 100)."""
    for alias in aliases:
        connection = connections[alias]
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            connection.close()


def forget() -> None:
    global _cache
    _cache = (0.0, {})


def subscribers_of(event_type: str) -> list[str]:
    """The attached contexts that take `event_type`, in a stable order: what the relay routes by.
    If the rows cannot be read, the declarations route (a detached context then gets a
    copy its inbox can take: more than asked, never less)."""
    try:
        current = rows()
    except Exception:
        log.exception("subscriptions unreadable: routing by the declarations")
        return registry.subscribers_of(event_type)
    return sorted(context for context, row in current.items() if row.attached
                  and (event_type in row.event_types or registry.ALL_EVENTS in row.event_types))


def _known(context: str) -> Subscription:
    if context not in registry.contexts():
        raise ValueError(f"unknown context {context!r}; subscribers: {', '.join(registry.contexts())}")
    return _row(context)


def detach(context: str) -> Subscription:
    """Stop routing events to `context` (idempotent). Its workers are told separately (control)."""
    row = _known(context)
    if row.attached:
        row.attached, row.replaying, row.detached_at = False, False, timezone.now()
        row.save(using=context)
    forget()
    return row


def _types_by_producer(types: list[str]) -> dict[str, list[str]]:
    wanted = event_types() if registry.ALL_EVENTS in types else [t for t in types if t in set(event_types())]
    result: dict[str, list[str]] = {}
    for event_type in wanted:
        result.setdefault(event_class(event_type).producer, []).append(event_type)
    return result


def _since(row: Subscription) -> datetime:
    horizon = timezone.now() - timedelta(seconds=window())
    return max(horizon, row.replay_from) if row.replay_from else horizon


def missing(context: str, row: Subscription, *, after: dict[str, int] | None = None) -> dict[str, list[int]]:
    """{producer: outbox ids, in order} of events of the row's types that `context` has not
    handled (nor dead-lettered): created since the replay start, or sent (or resent) since,
    or never sent."""
    since = _since(row)
    result = {}
    for producer, types in _types_by_producer(row.event_types).items():
        candidates = OutboxMessage.objects.using(producer).filter(event_type__in=types).filter(
            Q(created_at__gte=since) | Q(sent_at__gte=since) | Q(sent_at__isnull=True),
            created_at__gte=timezone.now() - timedelta(seconds=window()))
        if after and after.get(producer):
            candidates = candidates.filter(id__gt=after[producer])
        pairs = list(candidates.order_by("id").values_list("id", "event_id"))
        handled: set[str] = set()
        for start in range(0, len(pairs), CHUNK):
            ids = [event_id for _, event_id in pairs[start:start + CHUNK]]
            handled |= {str(e) for e in InboxMessage.objects.using(context).filter(event_id__in=ids)
                        .values_list("event_id", flat=True)}
            # A dead letter waits for an operator (retry_dead_letters), not for the replay.
            handled |= set(DeadLetter.objects.using(context).filter(
                event_id__in=[str(e) for e in ids], retried_at__isnull=True).values_list("event_id", flat=True))
        ids = [pk for pk, event_id in pairs if str(event_id) not in handled]
        if ids:
            result[producer] = ids
    return result


def lag(context: str, row: Subscription | None = None) -> int:
    """Events of its types `context` is behind by: 0 when attached and caught up."""
    row = row or _known(context)
    if row.attached and not row.replaying:
        return 0
    return sum(len(ids) for ids in missing(context, row).values())


def attach(context: str) -> Subscription:
    """Route events to `context` again and start its catch-up (the first pass runs here)."""
    row = _known(context)
    if row.attached:
        return row
    oldest = timezone.now() - timedelta(seconds=window())
    if row.detached_at and row.detached_at - DETACH_MARGIN < oldest:
        types = ", ".join(row.event_types)
        raise AttachRefused(
            f"{context} was detached at {row.detached_at:%Y-%m-%d %H:%M:%S}Z, before the replay window "
            f"({window():g} s, the shorter of EVENTFLOW_RETENTION_OUTBOX and EVENTFLOW_RETENTION_INBOX) "
            f"began at {oldest:%Y-%m-%d %H:%M:%S}Z: the events of types {types} it missed between those "
            f"times may be gone from the producers' outboxes, so a catch-up would be silently incomplete. "
            f"Rebuild what it derives from them instead, or raise the retention before detaching for so long.")
    with transaction.atomic(using=context):
        row.attached, row.replaying, row.attached_at = True, True, timezone.now()
        row.replay_from = row.detached_at - DETACH_MARGIN if row.detached_at else None
        row.replay_cursor, row.replayed = {}, 0
        row.save(using=context)
    forget()
    replay_pass(context)
    return row


def replay_pass(context: str, *, resend: bool = False) -> int:
    """Send `context` the events it misses beyond the replay cursor, in each producer's
    order; `resend` starts over (what was sent and is still missing was lost). Ends the
    replay once nothing is missing and other processes route to it. Returns events sent."""
    row = _row(context)
    if not row.attached or not row.replaying:
        return 0
    todo = missing(context, row, after=None if resend else row.replay_cursor)
    sent_at = timezone.now().isoformat()
    sent, cursor = 0, dict(row.replay_cursor)
    for producer, ids in todo.items():
        for start in range(0, len(ids), CHUNK):
            for pk, envelope in (OutboxMessage.objects.using(producer).filter(id__in=ids[start:start + CHUNK])
                                 .order_by("id").values_list("id", "envelope")):
                transport.send_delivery(context, envelope, sent_at=sent_at)
                cursor[producer] = max(pk, cursor.get(producer, 0))
                sent += 1
    settled = row.attached_at is None or timezone.now() - row.attached_at > timedelta(seconds=SETTLE)
    done = settled and not any(missing(context, row).values())
    Subscription.objects.using(context).filter(pk=row.pk).update(
        replay_cursor=cursor, replayed=row.replayed + sent, replaying=not done)
    if sent:
        log.info("replay: sent %s events to %s", sent, context)
    if done:
        log.info("replay: %s caught up (%s events replayed)", context, row.replayed + sent)
        forget()
    return sent


def replay_due() -> int:
    """The sweep's job: a pass for every replaying context; starts over for one whose queue
    emptied while events are still missing (a replayed message was lost)."""
    from eventbus import broker

    sent = 0
    for context, row in rows(max_age=0).items():
        if row.attached and row.replaying:
            try:
                idle = not broker.queue_depths([context]).get(context)
                sent += replay_pass(context, resend=idle and bool(row.replay_cursor))
            except Exception:
                log.exception("replay of %s failed; the sweep tries again", context)
    return sent


def _state(context: str, row: Subscription) -> dict:
    return {"attached": row.attached, "replaying": row.replaying, "lag": lag(context, row),
            "replayed": row.replayed, "detached_at": row.detached_at.isoformat() if row.detached_at else None}


def state(context: str) -> dict:
    """{"attached", "replaying", "lag", "replayed", "detached_at"} of one subscriber, read now."""
    return _state(context, _known(context))


def states() -> dict[str, dict]:
    """state() of every subscriber, from rows at most ROUTES_TTL old: for /api/contexts/ and the graph."""
    return {context: _state(context, row) for context, row in rows().items()}
