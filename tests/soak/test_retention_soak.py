"""Soak: orders at a steady rate for minutes with short retention settings. Rows and
bytes level off while every committed event reaches every subscriber (lost = 0).

Not in the default suite (marker `soak`): `make test PYTEST_ARGS="-m soak"`.
EVENTFLOW_SOAK_SECONDS (default 180) and EVENTFLOW_SOAK_RATE (orders/s, default 2) tune it.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings

from config.routers import context_names as contexts  # the one list of contexts
from django.db import connections

from eventbus import registry
from eventbus.models import DeadLetter, InboxMessage, OutboxMessage
from tests.support.flow import assert_flow_invariants, seed_products
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live, pytest.mark.soak]

SECONDS = float(os.environ.get("EVENTFLOW_SOAK_SECONDS", "180"))
RATE = float(os.environ.get("EVENTFLOW_SOAK_RATE", "2"))
SHORT_RETENTION = {
    "EVENTFLOW_RETENTION_INTERVAL": "5",
    "EVENTFLOW_RETENTION_OUTBOX": "30",
    "EVENTFLOW_RETENTION_INBOX": "45",  # the suite's redelivery window is about 20 s
    "EVENTFLOW_RETENTION_DEAD_LETTERS": "30",
    "EVENTFLOW_RETENTION_DASHBOARD": "30",
    "EVENTFLOW_RETENTION_DASHBOARD_ROWS": "4000",
}




@pytest.fixture
def short_retention_sweep(stack):
    """The sweep (which applies retention) restarted with short retention settings."""
    saved = {name: os.environ.get(name) for name in SHORT_RETENTION}
    stack.stop_sweep("sweep")
    os.environ.update(SHORT_RETENTION)
    try:
        stack.start_sweep()
        yield
    finally:
        stack.stop_sweep("sweep")
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        stack.start_sweep()


class Auditor(threading.Thread):
    """Every few seconds: note each newly committed event for each subscriber, and strike
    it off once that subscriber's inbox (or dead letters) holds it — before retention
    could delete either row."""

    def __init__(self):
        super().__init__(daemon=True)
        self.last_id = {ctx: OutboxMessage.objects.using(ctx).order_by("-id").values_list("id", flat=True).first() or 0
                        for ctx in contexts()}
        self.pending: dict[str, set[str]] = {ctx: set() for ctx in contexts()}
        self.committed = 0
        self.stopping = threading.Event()
        self.errors: list[str] = []

    def check(self) -> None:
        for ctx in contexts():
            rows = list(OutboxMessage.objects.using(ctx).filter(id__gt=self.last_id[ctx]).order_by("id")
                        .values_list("id", "event_id", "event_type"))
            for row_id, event_id, event_type in rows:
                self.committed += 1
                self.last_id[ctx] = row_id
                for subscriber in registry.subscribers_of(event_type):
                    self.pending[subscriber].add(str(event_id))
        for subscriber, ids in self.pending.items():
            if not ids:
                continue
            have = {str(e) for e in InboxMessage.objects.using(subscriber).filter(event_id__in=list(ids))
                    .values_list("event_id", flat=True)}
            have |= set(DeadLetter.objects.using(subscriber).filter(event_id__in=list(ids))
                        .values_list("event_id", flat=True))
            ids -= have

    def lost(self) -> dict[str, int]:
        return {ctx: len(ids) for ctx, ids in self.pending.items() if ids}

    def run(self):
        try:
            while not self.stopping.wait(3):
                self.check()
        except Exception as exc:
            self.errors.append(repr(exc))
        finally:
            connections.close_all()


def stored_rows() -> int:
    from dashboard.models import ControlAction, LogEntry
    from inventory.models import RejectedOrder as InventoryRejected
    from payments.models import RejectedOrder as PaymentsRejected

    total = sum(model.objects.using(ctx).count() for ctx in contexts()
                for model in (OutboxMessage, InboxMessage, DeadLetter))
    return total + sum(model.objects.using(alias).count() for model, alias in (
        (LogEntry, "dashboard"), (ControlAction, "dashboard"),
        (InventoryRejected, "inventory"), (PaymentsRejected, "payments")))


def stored_bytes() -> int:
    """Bytes of the contexts' databases: SQLite files with their WAL, or PostgreSQL's sizes."""
    total = 0
    for alias in contexts():
        cfg = settings.DATABASES[alias]
        if cfg["ENGINE"].endswith("sqlite3"):
            total += sum(p.stat().st_size for p in (Path(cfg["NAME"]), Path(f"{cfg['NAME']}-wal")) if p.exists())
        else:
            with connections[alias].cursor() as cursor:
                cursor.execute("SELECT pg_database_size(current_database())")
                total += cursor.fetchone()[0]
    return total


def test_rows_and_bytes_level_off_under_a_steady_load_with_nothing_lost(stack, live_db, short_retention_sweep):
    from orders.models import Order
    from orders.services import order_place

    skus = seed_products({"A": ("3.00", 1_000_000), "B": ("5.00", 1_000_000)}, prefix="SOAK")
    auditor = Auditor()
    auditor.start()
    order_ids, samples = [], []  # samples: (seconds since start, rows, bytes)
    tokens = ("tok_visa", "tok_visa", "tok_visa", "tok_declined")
    started = time.monotonic()
    next_sample = started
    while (elapsed := time.monotonic() - started) < SECONDS:
        n = len(order_ids)
        order_ids.append(order_place(customer_name="Soak", customer_email="soak@example.com",
                                     lines=[{"sku": skus["AB"[n % 2]], "qty": 1}],
                                     payment_token=tokens[n % len(tokens)]).order_id)
        if time.monotonic() >= next_sample:
            samples.append((elapsed, stored_rows(), stored_bytes()))
            next_sample += 10
        time.sleep(max(0.0, started + len(order_ids) / RATE - time.monotonic()))

    wait_for(lambda: not Order.objects.using("orders").filter(order_id__in=order_ids, status=Order.PENDING).exists(),
             timeout=180, message=f"all {len(order_ids)} orders decided")
    stack.wait_idle(timeout=180)
    wait_for(lambda: not auditor.lost(), timeout=60, message="every committed event in every subscriber's inbox")
    auditor.stopping.set()
    auditor.join(10)
    assert not auditor.errors, auditor.errors
    assert auditor.committed > len(order_ids) * 3, auditor.committed  # the auditor did see the flow
    assert auditor.lost() == {}  # lost = 0
    assert_flow_invariants(order_ids, set(skus.values()), timeout=180)

    # Level off: past the midpoint (several retention periods in), nothing keeps growing.
    # Rows waver with the backlog (unconfirmed rows stay), so compare averages of three samples.
    report = "\n".join(f"{t:6.0f}s rows={rows} bytes={size}" for t, rows, size in samples)
    print(f"\n{len(order_ids)} orders, {auditor.committed} events audited, lost 0\n{report}")
    half = [s for s in samples if s[0] >= SECONDS / 2]
    assert len(half) >= 6, report
    rows_at_half = sum(rows for _, rows, _ in half[:3]) / 3
    rows_at_end = sum(rows for _, rows, _ in samples[-3:]) / 3
    assert rows_at_end <= 1.3 * rows_at_half, report
    # Without retention the rows would double over the second half; they never come near.
    assert max(rows for _, rows, _ in half) < 1.7 * rows_at_half, report
    assert samples[-1][2] <= 1.3 * half[0][2], report  # bytes
