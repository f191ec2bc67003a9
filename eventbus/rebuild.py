"""Rebuild a context's local view from the log: discard it, replay the retained events that
feed it through the context's own handlers, and swap only if the result is whole.

A context declares its local view in its handlers.py (`registry.register_local_view`): the
models that hold its copy of other contexts' data and the event types that feed them. The
rebuild runs in ONE transaction of the context's database: readers keep seeing the old view
(MVCC; SQLite's WAL) until the commit swaps in the new one, and deliveries that would write
the view wait for it. If the rebuilt rows differ from the ones they replace (the outboxes no
longer hold the events that built some row: retention), it rolls back unless forced.
Feeding handlers must only write the view (they run again here, outside the inbox).
A view not fed by events (the dashboard's view cache, fed by the receipts' view rows) registers
a `refill` instead, which writes it again from its own log; the rest is the same.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.db.models import AutoField
from django.utils import timezone

from contracts import event_class, parse_envelope
from eventbus import registry, subscriptions
from eventbus.locks import lock_key
from eventbus.models import OutboxMessage

PROGRESS_EVERY = 200


class RebuildDiffers(RuntimeError):
    """The rebuilt view is not the one it would replace; nothing was changed."""


def _key(row: tuple) -> str:
    """A row's canonical text: rows holding JSON (dicts) sort and compare by it."""
    return json.dumps(row, sort_keys=True, default=str)


def _rows(model, context: str) -> list[tuple]:
    """A model's rows as comparable tuples: no automatic primary key, no automatic timestamps."""
    names = [f.attname for f in model._meta.concrete_fields
             if not isinstance(f, AutoField) and not getattr(f, "auto_now", False)
             and not getattr(f, "auto_now_add", False)]
    return sorted(model.objects.using(context).values_list(*names), key=_key)


def snapshot(context: str) -> dict[str, list[tuple]]:
    """The local view of `context`, model by model, row by row."""
    return {model.__name__: _rows(model, context) for model in registry.local_view(context)["models"]}


def feeding_events(context: str) -> list[dict]:
    """The retained envelopes of the types that feed the view, in each producer's order."""
    types = registry.local_view(context)["fed_by"]
    by_producer: dict[str, list[str]] = {}
    for event_type in types:
        by_producer.setdefault(event_class(event_type).producer, []).append(event_type)
    since = timezone.now() - timedelta(seconds=subscriptions.window())
    envelopes = []
    for producer, mine in by_producer.items():
        envelopes += list(OutboxMessage.objects.using(producer).filter(event_type__in=mine, created_at__gte=since)
                          .order_by("id").values_list("envelope", flat=True))
    return envelopes


def rebuild(context: str, *, force: bool = False, progress: Callable[[str], None] = lambda line: None) -> dict:
    """Discard and rebuild `context`'s local view; returns {"replayed", "unit", "rows", "equal"}.
    Raises RebuildDiffers (and changes nothing) when the result differs, unless `force`."""
    spec = registry.local_view(context)
    refill = spec["refill"]
    if refill is None:
        events = feeding_events(context)
        progress(f"{context}: {len(events)} retained events of {', '.join(spec['fed_by'])} feed "
                 f"{', '.join(m.__name__ for m in spec['models'])}")
    with transaction.atomic(using=context):
        if spec["lock"]:
            lock_key(context, spec["lock"])
        before = snapshot(context)
        for model in spec["models"]:
            model.objects.using(context).all().delete()
        if refill is not None:
            replayed = refill(progress)
        else:
            replayed = _replay(context, events, progress)
        after = snapshot(context)
        equal = before == after
        if not equal and not force:
            transaction.set_rollback(True, using=context)
            missing = {name: len({_key(r) for r in before[name]} - {_key(r) for r in after[name]}) for name in before}
            kept = ("Its log keeps the history it is rebuilt from only so long (retention)" if refill is not None
                    else f"The outboxes keep events {subscriptions.window():g} s")
            raise RebuildDiffers(f"{context}: the rebuilt view differs from the one it would replace "
                                 f"(rows not rebuilt: {missing}); the old view is kept. {kept}: "
                                 f"use --force to accept the rebuilt one.")
    rows = sum(len(r) for r in after.values())
    progress(f"{context}: swapped in {rows} rows ({'equal to' if equal else 'different from'} the old view, row by row)")
    return {"replayed": replayed, "unit": "events" if refill is None else "log records", "rows": rows, "equal": equal}


def _replay(context: str, events: list[dict], progress: Callable[[str], None]) -> int:
    """The retained envelopes through the context's own handlers, in order."""
    for index, raw in enumerate(events, 1):
        envelope = parse_envelope(raw)
        for handler in registry.handlers_for(context, envelope.event_type):
            handler(envelope.event, envelope)
        if index % PROGRESS_EVERY == 0 or index == len(events):
            progress(f"  replayed {index}/{len(events)}")
    return len(events)
