"""Rebuild a context's local view from the log: discard it, replay the retained events that
feed it through the context's own handlers, and swap only if the result is whole.

A context declares its local view in its handlers.py (`registry.register_local_view`): the
models that hold its copy of other contexts' data and the event types that feed them. The
rebuild runs in ONE transaction of the context's database: readers keep seeing the old view
(MVCC; SQLite's WAL) until the commit swaps in the new one, and deliveries that would write
the view wait for it. If the rebuilt rows differ from the ones they replace (the outboxes no
longer hold the events that built some row: retention), it rolls back unless forced.
Feeding handlers must only write the view (they run again here, outside the inbox).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from contracts import event_class, parse_envelope
from eventbus import registry, subscriptions
from eventbus.models import OutboxMessage

PROGRESS_EVERY = 200


class RebuildDiffers(RuntimeError):
    """The rebuilt view is not the one it would replace; nothing was changed."""


def _rows(model, context: str) -> list[tuple]:
    """A model's rows as comparable tuples: no primary key, no automatic timestamps."""
    fields = [f.attname for f in model._meta.concrete_fields
              if not f.primary_key and not getattr(f, "auto_now", False) and not getattr(f, "auto_now_add", False)]
    return sorted(model.objects.using(context).values_list(*fields))


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
    """Discard and rebuild `context`'s local view; returns {"replayed", "rows", "equal"}.
    Raises RebuildDiffers (and changes nothing) when the result differs, unless `force`."""
    spec = registry.local_view(context)
    events = feeding_events(context)
    progress(f"{context}: {len(events)} retained events of {', '.join(spec['fed_by'])} feed "
             f"{', '.join(m.__name__ for m in spec['models'])}")
    with transaction.atomic(using=context):
        before = snapshot(context)
        for model in spec["models"]:
            model.objects.using(context).all().delete()
        for index, raw in enumerate(events, 1):
            envelope = parse_envelope(raw)
            for handler in registry.handlers_for(context, envelope.event_type):
                handler(envelope.event, envelope)
            if index % PROGRESS_EVERY == 0 or index == len(events):
                progress(f"  replayed {index}/{len(events)}")
        after = snapshot(context)
        equal = before == after
        if not equal and not force:
            transaction.set_rollback(True, using=context)
            missing = {name: len(set(before[name]) - set(after[name])) for name in before}
            raise RebuildDiffers(f"{context}: the rebuilt view differs from the one it would replace "
                                 f"(rows not rebuilt: {missing}); the old view is kept. The outboxes keep "
                                 f"events {subscriptions.window():g} s: use --force to accept the rebuilt one.")
    rows = sum(len(r) for r in after.values())
    progress(f"{context}: swapped in {rows} rows ({'equal to' if equal else 'different from'} the old view, row by row)")
    return {"replayed": len(events), "rows": rows, "equal": equal}
