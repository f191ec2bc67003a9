"""The bus against the real private Redis, real Celery workers and a real Daphne."""

from __future__ import annotations

import json
import uuid

import pytest
from django.conf import settings
from websockets.sync.client import connect

from eventbus import transport
from eventbus.models import DeadLetter, InboxMessage, OutboxMessage
from eventbus.delivery import now_iso
from tests.support.bus import (log_entries, new_probe_id, probe_effects, publish_probe, receipt_outcomes, redelivered_after,
                               unacked_deliveries)
from tests.probe.handlers import started_key
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]


def ws_messages(ws, *, until, timeout=30):
    """Read frames (unpacking batches) until `until(message)` is true; return all messages seen."""
    import time

    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        items = frame["items"] if frame["type"] == "batch" else [frame]
        seen.extend(items)
        if any(until(item) for item in items):
            return seen
    pytest.fail(f"no matching websocket message in {timeout}s; saw {[m.get('type') for m in seen]}")


def test_an_event_is_handled_elsewhere_logged_and_streamed(stack, live_db, daphne_url, ws_origin):
    ws_url = daphne_url.replace("http", "ws", 1) + "/ws/events/"
    with connect(ws_url, origin=ws_origin, open_timeout=10) as ws:
        snapshot = json.loads(ws.recv(timeout=10))
        assert snapshot["type"] == "snapshot"
        assert {"seq", "topology", "events", "views", "queues"} <= set(snapshot)
        probe_id = new_probe_id()
        envelope = publish_probe(probe_id)

        wait_for(lambda: probe_effects(probe_id) == 1, message="the payments context to handle the probe")
        streamed = ws_messages(
            ws, until=lambda m: m["type"] == "event" and m["envelope"]["event_id"] == envelope.event_id
        )
    event_message = next(m for m in streamed if m["type"] == "event" and m["envelope"]["event_id"] == envelope.event_id)
    assert event_message["seq"] > snapshot["seq"]
    assert event_message["envelope"]["payload"]["probe_id"] == probe_id
    seqs = [m["seq"] for m in streamed if "seq" in m and m["type"] in ("event", "receipt")]
    assert seqs == sorted(seqs)

    logged = wait_for(lambda: log_entries(envelope.event_id, kind="event"), message="the event in the dashboard log")
    assert logged[0].data == envelope.as_dict()
    wait_for(lambda: receipt_outcomes(envelope.event_id, "payments") == ["ok"], message="an ok receipt from payments")
    row = OutboxMessage.objects.using("inventory").get(event_id=envelope.event_id)
    assert row.sent_at is not None


def test_the_log_api_pages_by_seq(stack, live_db, client):
    probe_id = new_probe_id()
    envelope = publish_probe(probe_id)
    entry = wait_for(lambda: log_entries(envelope.event_id, kind="event"), message="the event in the log")[0]
    response = client.get("/api/events/", {"after_seq": entry.seq - 1, "limit": 1})
    assert response.status_code == 200
    body = response.json()
    assert [item["seq"] for item in body["items"]] == [entry.seq]
    assert body["items"][0]["envelope"]["event_id"] == envelope.event_id
    response = client.get("/api/events/", {"correlation_id": envelope.correlation_id})
    assert [i["envelope"]["event_id"] for i in response.json()["items"] if i["type"] == "event"] == [envelope.event_id]
    assert client.get("/api/events/", {"after_seq": "x"}).status_code == 400
    assert client.get("/api/events/", {"limit": "0"}).status_code == 400


def test_the_same_envelope_twice_changes_state_once(stack, live_db):
    probe_id = new_probe_id()
    envelope = publish_probe(probe_id)
    wait_for(lambda: probe_effects(probe_id) == 1, message="the first delivery")

    transport.send_delivery("payments", envelope.as_dict(), sent_at="2026-01-01T00:00:00Z")
    wait_for(lambda: receipt_outcomes(envelope.event_id, "payments") == ["ok", "duplicate"],
             message="a duplicate receipt for the second delivery")
    assert probe_effects(probe_id) == 1
    assert InboxMessage.objects.using("payments").filter(event_id=envelope.event_id).count() == 1


def test_sigkill_while_the_handler_runs_loses_nothing_and_applies_once(stack, live_db):
    probe_id = new_probe_id()
    envelope = publish_probe(probe_id, sleep=4)
    broker = stack.broker()
    # The payments worker has taken this very delivery (unacknowledged) and sleeps in the handler.
    held = (lambda: True) if settings.BROKER_IS_AMQP else (  # RabbitMQ cannot list what a worker holds
        lambda: envelope.event_id in unacked_deliveries(broker, "payments"))
    wait_for(held, message="the worker to take the message")
    wait_for(lambda: broker.exists(started_key(probe_id)), message="the handler to start")
    stack.kill_worker("payments")
    moment = now_iso()
    assert held()  # it died holding it
    assert probe_effects(probe_id) == 0
    stack.start_worker("payments")
    # The unacked message comes back after the visibility timeout (8 s in tests; RabbitMQ: at once).
    wait_for(lambda: probe_effects(probe_id) == 1, timeout=60, message="the event handled by the new worker")
    wait_for(lambda: redelivered_after(envelope.event_id, "payments", moment), message="an ok receipt from the new worker")
    stack.wait_idle(timeout=60)
    assert probe_effects(probe_id) == 1
    assert InboxMessage.objects.using("payments").filter(event_id=envelope.event_id).count() == 1


def test_broker_down_at_commit_then_back_the_sweep_delivers_every_event(stack, live_db):
    stack.redis.stop()
    try:
        probe_ids = [new_probe_id() for _ in range(3)]
        envelopes = [publish_probe(probe_id) for probe_id in probe_ids]
        unsent = OutboxMessage.objects.using("inventory").filter(
            event_id__in=[e.event_id for e in envelopes], sent_at__isnull=True
        )
        assert unsent.count() == 3
    finally:
        stack.redis.start()
    for probe_id in probe_ids:
        wait_for(lambda: probe_effects(probe_id) == 1, timeout=60, message=f"{probe_id} delivered after the broker came back")
    assert not unsent.exists()
    # The workers consume again after the reconnect: a fresh event flows too.
    fresh = new_probe_id()
    publish_probe(fresh)
    wait_for(lambda: probe_effects(fresh) == 1, timeout=30, message="a fresh event after the reconnect")


def test_an_invalid_payload_is_dead_lettered_with_its_reason_and_the_next_flows(stack, live_db):
    bad_id = str(uuid.uuid4())
    poison = {
        "event_id": bad_id, "event_type": "ProbePinged", "version": 1, "producer": "inventory",
        "correlation_id": str(uuid.uuid4()), "causation_id": None,
        "occurred_at": "2026-11-27T10:00:00Z", "payload": {"sleep": 0},  # no probe_id
    }
    transport.send_delivery("payments", poison, sent_at="2026-11-27T10:00:00Z")
    letter = wait_for(lambda: DeadLetter.objects.using("payments").filter(event_id=bad_id).first(),
                      message="the poison message dead-lettered")
    assert "payload.probe_id" in letter.error and "missing field" in letter.error
    wait_for(lambda: receipt_outcomes(bad_id, "payments") == ["dead"], message="a dead receipt in the dashboard log")

    probe_id = new_probe_id()
    publish_probe(probe_id)
    wait_for(lambda: probe_effects(probe_id) == 1, message="the next event to flow")


def test_a_failing_handler_is_retried_then_dead_lettered_and_retryable(stack, live_db):
    from django.core.management import call_command

    probe_id = new_probe_id()
    envelope = publish_probe(probe_id, fail=True)
    letter = wait_for(lambda: DeadLetter.objects.using("payments").filter(event_id=envelope.event_id).first(),
                      timeout=30, message="dead letter after every try")
    assert letter.tries == 3
    assert "was told to fail" in letter.error
    wait_for(lambda: receipt_outcomes(envelope.event_id, "payments") == ["failed", "failed", "dead"],
             message="two failed receipts and a dead one")
    assert probe_effects(probe_id) == 0
    call_command("retry_dead_letters", context="payments", ids=[letter.id])
    letter.refresh_from_db(using="payments")
    assert letter.retried_at is not None
    # Still failing (nothing was fixed), so it comes back as a new dead letter after its tries.
    wait_for(lambda: DeadLetter.objects.using("payments").filter(event_id=envelope.event_id).count() == 2,
             timeout=30, message="the retried delivery to run again")
