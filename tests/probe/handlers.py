import os
import time

from eventbus import broker, subscribe
from eventbus.commands import handle_commands
from tests.probe import events  # noqa: F401  registers ProbePinged in the catalog
from tests.probe.models import ProbeEffect


def broken_key(probe_id: str) -> str:
    return f"eventflow:test:broken:{probe_id}"


def started_key(probe_id: str) -> str:
    return f"eventflow:test:started:{probe_id}"


def record_probe(event, envelope):
    # Deliberately not idempotent by itself: only the inbox stands between a
    # redelivery and a second row.
    if event.sleep:  # lets a test see the handler running (inside its transaction) before it kills it
        broker.client().set(started_key(event.probe_id), os.getpid(), ex=600)
        time.sleep(event.sleep)
    if event.fail:
        raise RuntimeError(f"probe {event.probe_id} was told to fail")
    if broker.client().exists(broken_key(event.probe_id)):  # a "bug" a test can fix at run time
        raise RuntimeError(f"probe {event.probe_id} hit a bug")
    ProbeEffect.objects.using("payments").create(probe_id=event.probe_id, event_id=envelope.event_id, pid=os.getpid())


def carry_out_record_probe(command):
    if command.sleep:
        time.sleep(command.sleep)
    ProbeEffect.objects.using("payments").create(probe_id=command.probe_id, event_id="command", pid=os.getpid())
    return {"ok": True}


subscribe("payments", {"ProbePinged": record_probe})
handle_commands("payments", {"RecordProbe": carry_out_record_probe})
