"""Counting what the bus did, from the databases: deliveries, loss, dead letters, rows, disk."""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings

from config.routers import context_names as contexts  # the one list of contexts
from django.db import connections

from bench.stats import broker_busy




def inbox_total() -> int:
    from eventbus.models import InboxMessage

    return sum(InboxMessage.objects.using(ctx).count() for ctx in contexts())


def unsent_total() -> int:
    from eventbus.models import OutboxMessage

    return sum(OutboxMessage.objects.using(ctx).filter(sent_at__isnull=True).count() for ctx in contexts())


def drain(broker, *, timeout: float) -> bool:
    """Wait until nothing is unsent, queued or held by a worker, twice in a row."""
    deadline = time.monotonic() + timeout
    calm = 0
    while calm < 2:
        calm = calm + 1 if not broker_busy(broker) and not unsent_total() else 0
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def loss() -> dict:
    """Every outbox row must be in the inbox of each of its event type's subscribers."""
    from eventbus import registry
    from eventbus.models import DeadLetter, InboxMessage, OutboxMessage

    inboxes = {ctx: set(InboxMessage.objects.using(ctx).values_list("event_id", flat=True)) for ctx in contexts()}
    subscribers: dict[str, list[str]] = {}
    published = expected = missing = 0
    examples = []
    for ctx in contexts():
        for event_id, event_type in OutboxMessage.objects.using(ctx).values_list("event_id", "event_type"):
            published += 1
            subs = subscribers.setdefault(event_type, registry.subscribers_of(event_type))
            for sub in subs:
                expected += 1
                if event_id not in inboxes.get(sub, ()):
                    missing += 1
                    if len(examples) < 5:
                        examples.append(f"{event_type} {event_id} not in {sub}")
    dead = sum(DeadLetter.objects.using(ctx).count() for ctx in contexts())
    return {"published": published, "expected_deliveries": expected, "missing": missing,
            "dead_letters": dead, "examples": examples}


def db_snapshot() -> dict:
    """Rows of every table and bytes on disk (database file plus WAL) of each SQLite alias."""
    rows: dict[str, int] = {}
    disk = 0
    for alias, cfg in settings.DATABASES.items():
        if not cfg["ENGINE"].endswith("sqlite3"):
            continue
        with connections[alias].cursor() as cursor:
            try:
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except Exception:
                pass  # a writer holds it: the WAL is counted as it is
            tables = [r[0] for r in cursor.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'").fetchall()]
            for table in tables:
                rows[f"{alias}.{table}"] = cursor.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
        for suffix in ("", "-wal", "-shm"):
            path = Path(str(cfg["NAME"]) + suffix)
            if path.exists():
                disk += path.stat().st_size
    return {"rows": rows, "disk_bytes": disk}


def confirmed_orders() -> int:
    from orders.models import Order

    return Order.objects.using("orders").filter(status=Order.CONFIRMED).count()


def decided_orders() -> int:
    from orders.models import Order

    return Order.objects.using("orders").exclude(status=Order.PENDING).count()
