"""The bus under stress: a fair sweep that survives one context's failure, poison
messages, transient database errors, a lost tail of broker writes, and dead letters
that are not receipts."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from eventbus import broker, control, relay
from eventbus.deadletters import retry_dead_letters
from eventbus.models import DeadLetter, InboxMessage, OutboxMessage
from tests.probe.handlers import broken_key, locked_key, poison_key
from tests.support.audit import audit_since, outbox_mark
from tests.support.bus import new_probe_id, probe_effects, publish_probe, receipt_outcomes
from tests.support.waiting import wait_for


def sent_row(*, handled_by=()) -> OutboxMessage:
    """A sent, unconfirmed ProbePinged row of inventory, handled by `handled_by` only."""
    event_id = uuid.uuid4()
    row = OutboxMessage.objects.using("inventory").create(
        event_id=event_id, event_type="ProbePinged", correlation_id=uuid.uuid4(), envelope={},
        sent_at=timezone.now() - timedelta(seconds=5), broker_epoch=relay.current_epoch())
    broker.mark_sent([event_id])
    for subscriber in handled_by:
        InboxMessage.objects.using(subscriber).create(event_id=event_id, event_type="ProbePinged")
    return row


def test_rows_stuck_unconfirmed_do_not_starve_newer_ones(live_db):
    stuck = [sent_row() for _ in range(12)]  # nobody has them, nobody will soon (not overdue)
    fresh = sent_row(handled_by=("payments", "dashboard"))
    try:
        for _ in range(50):
            relay.confirm_and_redeliver("inventory", older_than=0, redeliver_after=3600, limit=5)
            fresh.refresh_from_db(using="inventory")
            if fresh.confirmed_at is not None:
                break
        assert fresh.confirmed_at is not None, "the newer row was never looked at"
        assert not OutboxMessage.objects.using("inventory").filter(pk__in=[r.pk for r in stuck],
                                                                    confirmed_at__isnull=False).exists()
    finally:
        OutboxMessage.objects.using("inventory").filter(pk__in=[r.pk for r in stuck]).delete()


def test_one_context_failing_does_not_stop_the_sweep_of_the_others(live_db, monkeypatch):
    swept = []
    real = relay.send_pending

    def failing_for_orders(context, **kwargs):
        swept.append(context)
        if context == "orders":
            raise RuntimeError("database is locked")
        return real(context, **kwargs)

    monkeypatch.setattr(relay, "send_pending", failing_for_orders)
    result = relay.sweep_once()
    assert swept[0] == "orders" and {"inventory", "payments", "dashboard"} <= set(swept)
    assert {"inventory", "payments", "dashboard"} <= set(result)


@pytest.mark.live
def test_a_message_that_kills_its_worker_is_dead_lettered_after_a_few_deliveries(stack, live_db):
    from django.conf import settings

    probe_id = new_probe_id()
    stack.broker().set(poison_key(probe_id), 1)
    try:
        envelope = publish_probe(probe_id)
        letter = wait_for(lambda: DeadLetter.objects.using("payments").filter(event_id=envelope.event_id).first(),
                          timeout=120, message="the poison message dead-lettered")
    finally:
        stack.broker().delete(poison_key(probe_id))
    assert f"taken {settings.EVENTFLOW_MAX_DELIVERIES + 1} times without finishing" in letter.error
    assert probe_effects(probe_id) == 0
    fresh = new_probe_id()
    publish_probe(fresh)
    wait_for(lambda: probe_effects(fresh) == 1, timeout=60, message="the next event to flow")


@pytest.mark.live
def test_a_transient_database_error_is_retried_past_max_tries(stack, live_db):
    from django.conf import settings

    probe_id = new_probe_id()
    locked = settings.EVENTFLOW_MAX_TRIES + 1  # more failures than a handler error would get tries
    stack.broker().set(locked_key(probe_id), locked)
    envelope = publish_probe(probe_id)
    wait_for(lambda: probe_effects(probe_id) == 1, timeout=60, message="the event handled once the lock is gone")
    assert not DeadLetter.objects.using("payments").filter(event_id=envelope.event_id).exists()
    wait_for(lambda: receipt_outcomes(envelope.event_id, "payments") == ["failed"] * locked + ["ok"],
             message="a failed receipt per locked try, then ok")


@pytest.mark.live
def test_a_dead_lettered_event_is_not_received_until_its_retry_is_handled(stack, live_db):
    probe_id = new_probe_id()
    stack.broker().set(broken_key(probe_id), 1)
    envelope = publish_probe(probe_id)
    row = OutboxMessage.objects.using("inventory").get(event_id=envelope.event_id)
    wait_for(lambda: OutboxMessage.objects.using("inventory").get(pk=row.pk).parked_at is not None, timeout=60,
             message="the row parked behind its dead letter")
    row.refresh_from_db(using="inventory")
    assert row.confirmed_at is None  # a dead letter is not a receipt
    letter = DeadLetter.objects.using("payments").get(event_id=envelope.event_id)
    stack.broker().delete(broken_key(probe_id))  # the fix is deployed
    retry_dead_letters(context="payments", ids=[letter.id])
    wait_for(lambda: probe_effects(probe_id) == 1, timeout=30, message="the retried delivery handled")
    wait_for(lambda: OutboxMessage.objects.using("inventory").get(pk=row.pk).confirmed_at is not None, timeout=30,
             message="the row confirmed once payments handled it")


def _queued(client, queue: str) -> list[tuple[bytes, str]]:
    """(raw message, event id) of the deliveries waiting in `queue` (kombu's JSON messages,
    base64 bodies); commands in the same queue are skipped."""
    found = []
    for raw in client.lrange(queue, 0, -1):
        args = json.loads(base64.b64decode(json.loads(raw)["body"]))[0]
        if len(args) > 1 and isinstance(args[1], dict) and "event_id" in args[1]:
            found.append((raw, args[1]["event_id"]))
    return found


def queued_event_ids(client, queue: str) -> list[str]:
    return [event_id for _, event_id in _queued(client, queue)]


def drop_queued(client, queue: str, event_id: str) -> None:
    """What a broker crash that loses its last writes (but keeps its epoch key) does to one delivery."""
    for raw, queued_id in _queued(client, queue):
        if queued_id == event_id:
            client.lrem(queue, 1, raw)


@pytest.mark.live
def test_a_delivery_lost_with_the_brokers_last_writes_is_resent_despite_a_backlog(stack, live_db):
    mark = outbox_mark()
    client = stack.broker()
    control.pause("payments")
    try:
        backlog = [new_probe_id() for _ in range(3)]
        for probe_id in backlog:
            publish_probe(probe_id)
        victim = publish_probe(new_probe_id())
        wait_for(lambda: victim.event_id in queued_event_ids(client, "payments"), message="the victim queued")
        drop_queued(client, "payments", victim.event_id)
        client.delete(f"eventflow:sent:{victim.event_id}")  # its sent mark went with it
        assert victim.event_id not in queued_event_ids(client, "payments")
        assert client.llen("payments") >= 3  # the subscriber has a backlog
        wait_for(lambda: victim.event_id in queued_event_ids(client, "payments"), timeout=30,
                 message="the sweep to resend the lost delivery while the backlog waits")
    finally:
        control.resume("payments")
    wait_for(lambda: probe_effects(victim.payload["probe_id"]) == 1, timeout=60, message="the victim handled")
    for probe_id in backlog:
        wait_for(lambda: probe_effects(probe_id) == 1, timeout=60, message="the backlog handled")
    stack.wait_idle(timeout=60)
    audit_since(mark, probes=[*backlog, victim.payload["probe_id"]]).assert_clean()
