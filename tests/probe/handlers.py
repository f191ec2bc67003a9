import os
import signal
import time

from django.db import OperationalError, transaction

from eventbus import broker, registry, subscribe
from eventbus.registry import handle_commands
from tests.probe import events  # noqa: F401  registers ProbePinged in the catalog
from tests.probe.models import ProbeEffect


def broken_key(probe_id: str) -> str:
    return f"eventflow:test:broken:{probe_id}"


def started_key(probe_id: str) -> str:
    return f"eventflow:test:started:{probe_id}"


def poison_key(probe_id: str) -> str:
    return f"eventflow:test:poison:{probe_id}"


def locked_key(probe_id: str) -> str:
    return f"eventflow:test:locked:{probe_id}"


def record_probe(event, envelope):
    # Deliberately not idempotent by itself: only the inbox stands between a
    # redelivery and a second row.
    if event.sleep:  # lets a test see the handler running (inside its transaction) before it kills it
        broker.client().set(started_key(event.probe_id), os.getpid(), ex=600)
        time.sleep(event.sleep)
    if broker.client().exists(poison_key(event.probe_id)):  # a message that kills its worker, every time
        os.kill(os.getpid(), signal.SIGKILL)
    if broker.client().exists(locked_key(event.probe_id)) and broker.client().decr(locked_key(event.probe_id)) >= 0:
        raise OperationalError("database is locked")
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


# --- faults a test can inject into the real owners' commands, one shot each ----------
def command_fault_key(command_type: str) -> str:
    return f"eventflow:test:command-fault:{command_type}"


def _with_faults(owner: str, command_type: str, carry_out):
    """After the owner's service ran, and only once per fault set: "slow:S" holds the
    reply S seconds after the commit (a slow commit); "kill:S" waits S seconds after the
    commit, then SIGKILLs the worker before any reply (its redelivery comes too late)."""

    def faulty(command):
        reply = carry_out(command)
        fault = broker.client().getdel(command_fault_key(command_type))
        if fault is not None:
            kind, _, seconds = fault.decode().partition(":")
            if kind == "slow":
                transaction.on_commit(lambda: time.sleep(float(seconds)), using=owner)
            elif kind == "kill":
                transaction.on_commit(lambda: (time.sleep(float(seconds)), os.kill(os.getpid(), signal.SIGKILL)),
                                      using=owner)
        return reply

    return faulty


for (_owner, _command_type), _carry_out in registry.command_handlers().items():
    if _owner in ("inventory", "payments") and _command_type != "RecordProbe":
        handle_commands(_owner, {_command_type: _with_faults(_owner, _command_type, _carry_out)})
