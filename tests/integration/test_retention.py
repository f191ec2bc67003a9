"""The retention policy deletes what it may, and only that, in small batches; settings
that cannot work together stop every process at startup."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from config.consistency import settings_problems
from dashboard.models import ControlAction, LogEntry
from eventbus import broker, retention
from eventbus.relay import current_epoch
from eventbus.models import DeadLetter, InboxMessage, OutboxMessage
from inventory.models import RejectedOrder as InventoryRejected
from payments.models import RejectedOrder as PaymentsRejected

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600.0


def outbox_row(context, *, age, confirmed):
    """A sent row; an unconfirmed one looks freshly sent to a running sweep (not overdue, not lost)."""
    row = OutboxMessage.objects.using(context).create(event_id=uuid.uuid4(), event_type="ProbePinged",
                                                     correlation_id=uuid.uuid4(), envelope={})
    at = timezone.now() - timedelta(seconds=age)
    broker.mark_sent([row.event_id])
    OutboxMessage.objects.using(context).filter(pk=row.pk).update(
        created_at=at, sent_at=at if confirmed else timezone.now(), confirmed_at=at if confirmed else None,
        broker_epoch=current_epoch())
    return row.pk


def aged(model, alias, field, age, **fields):
    row = model.objects.using(alias).create(**fields)
    model.objects.using(alias).filter(pk=row.pk).update(**{field: timezone.now() - timedelta(seconds=age)})
    return row.pk


def log_entry(age):
    key = f"test:{uuid.uuid4()}"
    return aged(LogEntry, "dashboard", "recorded_at", age, entry_key=key, kind=LogEntry.EVENT, event_id=key[5:],
                event_type="ProbePinged", producer="inventory", correlation_id=key[5:], data={})


def exists(model, context, pk) -> bool:
    return model.objects.using(context).filter(pk=pk).exists()


def test_retention_deletes_what_the_policy_allows_and_keeps_the_rest(live_db, request):
    two_hours = 2 * HOUR
    outbox = {"old confirmed": outbox_row("inventory", age=two_hours, confirmed=True),
              "new confirmed": outbox_row("inventory", age=60, confirmed=True),
              "old unconfirmed": outbox_row("inventory", age=two_hours, confirmed=False)}
    # Nobody will ever confirm it: gone after the test, whatever its outcome.
    request.addfinalizer(lambda: OutboxMessage.objects.using("inventory").filter(pk=outbox["old unconfirmed"]).delete())
    inbox = {"old": aged(InboxMessage, "payments", "handled_at", two_hours, event_id=uuid.uuid4(), event_type="X"),
             "new": aged(InboxMessage, "payments", "handled_at", 60, event_id=uuid.uuid4(), event_type="X")}
    dead = {"old unhandled": aged(DeadLetter, "orders", "created_at", two_hours, event_id="a", envelope={}, error="e"),
            "old retried": aged(DeadLetter, "orders", "retried_at", two_hours, event_id="b", envelope={}, error="e"),
            "new retried": aged(DeadLetter, "orders", "retried_at", 60, event_id="c", envelope={}, error="e")}
    markers = {"inventory old": aged(InventoryRejected, "inventory", "at", two_hours, order_id=str(uuid.uuid4())),
               "payments old": aged(PaymentsRejected, "payments", "at", two_hours, order_id=str(uuid.uuid4())),
               "payments new": aged(PaymentsRejected, "payments", "at", 60, order_id=str(uuid.uuid4()))}
    actions = {"old": aged(ControlAction, "dashboard", "created_at", two_hours, context="inventory", action="pause"),
               "new": aged(ControlAction, "dashboard", "created_at", 60, context="inventory", action="resume")}
    log_old = log_entry(two_hours)
    log_recent = [log_entry(60) for _ in range(6)]
    # Cap the log so that the two oldest recent entries are beyond it.
    cap = LogEntry.objects.using("dashboard").filter(seq__gt=log_recent[1]).count()

    with override_settings(EVENTFLOW_RETENTION_OUTBOX=HOUR, EVENTFLOW_RETENTION_INBOX=HOUR,
                           EVENTFLOW_RETENTION_DEAD_LETTERS=HOUR, EVENTFLOW_RETENTION_DASHBOARD=HOUR,
                           EVENTFLOW_RETENTION_DASHBOARD_ROWS=cap):
        deleted = retention.apply()

    assert deleted["inventory.outbox"] >= 1 and deleted["payments.inbox"] >= 1
    assert [k for k, pk in outbox.items() if exists(OutboxMessage, "inventory", pk)] == ["new confirmed", "old unconfirmed"]
    assert [k for k, pk in inbox.items() if exists(InboxMessage, "payments", pk)] == ["new"]
    assert [k for k, pk in dead.items() if exists(DeadLetter, "orders", pk)] == ["old unhandled", "new retried"]
    assert not exists(InventoryRejected, "inventory", markers["inventory old"])
    assert [k for k in ("payments old", "payments new") if exists(PaymentsRejected, "payments", markers[k])] == ["payments new"]
    assert [k for k, pk in actions.items() if exists(ControlAction, "dashboard", pk)] == ["new"]
    assert not exists(LogEntry, "dashboard", log_old)
    assert [exists(LogEntry, "dashboard", pk) for pk in log_recent] == [False, False, True, True, True, True]


def test_retention_deletes_in_batches_of_bounded_size(live_db):
    pks = [aged(InboxMessage, "orders", "handled_at", 2 * HOUR, event_id=uuid.uuid4(), event_type="X") for _ in range(5)]
    rows = InboxMessage.objects.using("orders").filter(pk__in=pks)
    assert retention.delete_in_batches(rows, batch=2, max_batches=1) == 2  # one run stops after its batches
    assert rows.count() == 3
    assert retention.delete_in_batches(rows, batch=2) == 3
    assert rows.count() == 0


BASE = {"EVENTFLOW_VISIBILITY_TIMEOUT": 60, "EVENTFLOW_MAX_TRIES": 5, "EVENTFLOW_RETRY_BACKOFF": 0.5,
        "EVENTFLOW_SWEEP_GRACE": 2.0, "EVENTFLOW_REDELIVER_AFTER": 300.0, "EVENTFLOW_RETENTION_INBOX": 7 * 86400.0,
        "EVENTFLOW_RETENTION_OUTBOX": 86400.0, "EVENTFLOW_RETENTION_DEAD_LETTERS": 86400.0,
        "EVENTFLOW_RETENTION_DASHBOARD": 86400.0, "EVENTFLOW_RETENTION_INTERVAL": 60.0,
        "EVENTFLOW_RETENTION_DASHBOARD_ROWS": 200_000}


@pytest.mark.parametrize("change, rule", [
    ({"EVENTFLOW_RETRY_BACKOFF": 8.0}, "EVENTFLOW_VISIBILITY_TIMEOUT=60s"),  # 8 * 2**3 = 64 s >= 60 s
    ({"EVENTFLOW_RETENTION_INBOX": 300.0}, "longer than the longest redelivery window"),
    ({"EVENTFLOW_RETENTION_OUTBOX": 0.0}, "EVENTFLOW_RETENTION_OUTBOX=0 must be more than 0"),
    ({"EVENTFLOW_RETENTION_DASHBOARD_ROWS": 10}, "at least 100 log entries"),
])
def test_inconsistent_settings_are_named(change, rule):
    assert settings_problems(BASE) == []
    [problem] = settings_problems({**BASE, **change})
    assert rule in problem


def test_a_process_refuses_to_start_with_a_backoff_beyond_the_visibility_timeout():
    import os

    env = {**os.environ, "EVENTFLOW_VISIBILITY_TIMEOUT": "8", "EVENTFLOW_MAX_TRIES": "3", "EVENTFLOW_RETRY_BACKOFF": "5"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode != 0
    assert "inconsistent eventflow settings" in result.stderr
    assert "waits up to 10s before a retry, not below EVENTFLOW_VISIBILITY_TIMEOUT=8s" in result.stderr
