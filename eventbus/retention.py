"""Retention: rows the bus and the contexts no longer need are deleted, in small batches.

What is kept, and for how long (settings in config/settings.py, README "Retention"):
- outbox rows: until confirmed (every subscriber has the event), then
  EVENTFLOW_RETENTION_OUTBOX seconds for replays and audits; unconfirmed rows stay;
- inbox rows (events and commands with their replies): EVENTFLOW_RETENTION_INBOX
  seconds, longer than any redelivery can come (checked at startup);
- dead letters: until handled (retried), then EVENTFLOW_RETENTION_DEAD_LETTERS;
- whatever a context registers with register_retention (rejection markers, the
  dashboard's log and control actions).

apply() runs from the relay sweep process every EVENTFLOW_RETENTION_INTERVAL
seconds. Each batch is one short autocommit DELETE of at most BATCH rows by primary
key, so writers wait at most one batch; a run stops after MAX_BATCHES per rule and
goes on at the next run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from config.routers import context_names
from eventbus.models import DeadLetter, InboxMessage, OutboxMessage

log = logging.getLogger("eventbus.retention")

BATCH = 500
MAX_BATCHES = 20

_jobs: dict[str, list[Callable[[], int]]] = {}
_last_run = 0.0


def register_retention(context: str, fn: Callable[[], int]) -> None:
    """A pruning job of `context` (fn() -> rows deleted), run with the bus's own."""
    jobs = _jobs.setdefault(context, [])
    if fn not in jobs:
        jobs.append(fn)


def delete_in_batches(rows: QuerySet, *, batch: int = BATCH, max_batches: int = MAX_BATCHES) -> int:
    """Delete `rows` (a filtered queryset on one database) a batch of primary keys at a
    time, each batch its own short transaction. Returns how many went."""
    deleted = 0
    for _ in range(max_batches):
        pks = list(rows.order_by("pk").values_list("pk", flat=True)[:batch])
        if not pks:
            break
        deleted += rows.model._base_manager.using(rows.db).filter(pk__in=pks).delete()[0]
        if len(pks) < batch:
            break
    return deleted


def older_than(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def keep_for(model, *, context: str, field: str, setting: str) -> Callable[[], int]:
    """A retention job: delete `model` rows of `context` whose `field` is older than
    settings.<setting> seconds."""

    def job() -> int:
        cutoff = older_than(getattr(settings, setting))
        return delete_in_batches(model.objects.using(context).filter(**{f"{field}__lt": cutoff}))

    job.__name__ = f"{model.__name__}.{field}"
    return job


def prune_bus(context: str) -> dict[str, int]:
    """The bus's own tables in one context's database."""
    return {
        "outbox": delete_in_batches(OutboxMessage.objects.using(context).filter(
            confirmed_at__lt=older_than(settings.EVENTFLOW_RETENTION_OUTBOX))),
        "inbox": delete_in_batches(InboxMessage.objects.using(context).filter(
            handled_at__lt=older_than(settings.EVENTFLOW_RETENTION_INBOX))),
        "dead_letters": delete_in_batches(DeadLetter.objects.using(context).filter(
            retried_at__lt=older_than(settings.EVENTFLOW_RETENTION_DEAD_LETTERS))),
    }


def apply() -> dict[str, int]:
    """Apply the whole policy once; each context and job fails alone. Returns rows deleted by name."""
    deleted: dict[str, int] = {}
    for context in context_names():
        try:
            for table, n in prune_bus(context).items():
                deleted[f"{context}.{table}"] = n
        except Exception:
            log.exception("retention of %s's bus tables failed; the others go on", context)
    for context, jobs in _jobs.items():
        for job in jobs:
            try:
                deleted[f"{context}.{job.__name__}"] = job()
            except Exception:
                log.exception("retention job %s of %s failed", job.__name__, context)
    return deleted


def apply_if_due() -> dict[str, int]:
    """apply() at most once per EVENTFLOW_RETENTION_INTERVAL seconds (the sweep calls this every round)."""
    global _last_run
    if time.monotonic() - _last_run < settings.EVENTFLOW_RETENTION_INTERVAL:
        return {}
    _last_run = time.monotonic()
    deleted = apply()
    if any(deleted.values()):
        log.info("retention deleted %s", ", ".join(f"{k}={v}" for k, v in deleted.items() if v))
    return deleted
