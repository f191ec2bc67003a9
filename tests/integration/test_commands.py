"""Commands wait for their owner; one whose sender gave up never takes effect."""

import uuid

import pytest

from eventbus import control
from eventbus.commands import CommandTimeout, send_command
from tests.support.bus import new_probe_id, probe_effects, receipt_outcomes
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]


def record_probe(probe_id, sleep=0.0):
    from tests.probe.events import RecordProbe

    return RecordProbe(probe_id=probe_id, sleep=sleep)


def test_a_command_is_carried_out_by_its_owner_and_answered(stack, live_db):
    probe_id = new_probe_id()
    sent = send_command(record_probe(probe_id), sender="orders", timeout=10)
    assert sent.reply["ok"] is True and sent.reply["outcome"] == "ok"
    assert probe_effects(probe_id) == 1
    wait_for(lambda: sorted(receipt_outcomes(sent.command_id, "payments")) == ["ok", "sent"],
             message="the command and its reply in the dashboard log")


def test_a_command_to_a_paused_owner_times_out_and_never_takes_effect(stack, live_db):
    probe_id = new_probe_id()
    control.pause("payments")
    try:
        with pytest.raises(CommandTimeout, match="payments did not answer RecordProbe within 1.5s"):
            send_command(record_probe(probe_id), sender="orders", timeout=1.5)
    finally:
        control.resume("payments")
    stack.wait_idle(timeout=30)
    assert probe_effects(probe_id) == 0


def test_a_command_still_running_when_its_sender_gives_up_is_undone(stack, live_db):
    from dashboard.models import LogEntry

    probe_id, correlation_id = new_probe_id(), str(uuid.uuid4())
    with pytest.raises(CommandTimeout):
        send_command(record_probe(probe_id, sleep=3), sender="orders", timeout=1.5, correlation_id=correlation_id)
    # The owner finishes its work after the deadline, sees it, rolls back and says so in its reply.
    reply = wait_for(lambda: LogEntry.objects.using("dashboard").filter(
        kind="receipt", correlation_id=correlation_id, context="payments", outcome="expired").first(),
        message="the owner's reply receipt: expired")
    assert reply.event_type == "RecordProbe"
    assert reply.data["error"] == "its sender gave up while it ran; undone"
    outcomes = sorted(LogEntry.objects.using("dashboard").filter(correlation_id=correlation_id)
                      .values_list("outcome", flat=True))
    assert outcomes == ["expired", "sent", "timeout"]  # it arrived and ran: the undo is what kept it out
    stack.wait_idle(timeout=30)
    assert probe_effects(probe_id) == 0


def test_a_redelivered_command_is_answered_with_its_stored_reply(live_db):
    from datetime import datetime, timedelta, timezone

    from eventbus.commands import execute

    probe_id = new_probe_id()
    now = datetime.now(timezone.utc)
    message = {"command_id": str(__import__("uuid").uuid4()), "command_type": "RecordProbe", "sender": "orders",
               "owner": "payments", "issued_at": now.isoformat(), "expires_at": (now + timedelta(seconds=30)).isoformat(),
               "payload": {"probe_id": probe_id, "sleep": 0.0}}
    first = execute(message)
    again = execute(message)
    assert first == {"ok": True, "outcome": "ok"}
    assert again == {"ok": True, "outcome": "ok", "redelivered": True}  # not "duplicate": the sender reads the real reply
    assert probe_effects(probe_id) == 1
