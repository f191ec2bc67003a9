"""Commands for the command-driven mode: a Celery task to the owner's queue and a reply
the sender waits for, with a timeout.

The owner carries a command out through its own services, in one transaction
with an inbox row that stores the reply: a redelivered command is not applied
twice and is answered with the reply it got the first time. A command that
reaches its owner after `expires_at` — the moment its sender gave up — is not
carried out: Celery discards it on arrival (`expires`) and the owner checks the
deadline again just before it commits. That check cannot cover a slow commit, a
worker killed between commit and reply, or a clock running behind the sender's:
a command may still take effect after its sender gave up, so a sender that
gives up must compensate (see orders/command_flow.py).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from celery import shared_task

from config.celery import app
from contracts import ContractError, command_class
from contracts.clock import iso, now_iso, parse
from contracts.registry import to_payload, validate_command
from eventbus import broker, registry, transport
from eventbus import telemetry, tracing
from eventbus.delivery import inbox_transaction
from eventbus.lineage import current_envelope
from eventbus.models import InboxMessage

log = logging.getLogger("eventbus.commands")

COMMAND_TASK = "eventbus.command"
REPLY_TTL = 300  # seconds a reply waits for a sender that may be slow to read it

class CommandFailed(Exception):
    """No reply came back: the command may or may not have taken effect, so its sender compensates."""

    def __init__(self, message: str, *, command_type: str, owner: str):
        self.command_type, self.owner = command_type, owner
        super().__init__(message)


class CommandTimeout(CommandFailed):
    """The owner did not reply in time (it may be offline, slow, or have died after committing)."""

    def __init__(self, command_type: str, owner: str, timeout: float):
        self.timeout = timeout
        super().__init__(f"{owner} did not answer {command_type} within {timeout:g}s",
                         command_type=command_type, owner=owner)


class CommandUnsent(CommandFailed):
    """The broker failed while the command was sent or its reply awaited."""


class CommandExpired(Exception):
    """Raised inside the owner's transaction to undo a command whose sender gave up."""


def _reply_key(command_id: str) -> str:
    return f"eventflow:reply:{command_id}"


def _record(message: dict, **fields) -> None:
    """Tell the dashboard about a command or its reply, as a receipt of kind command/reply."""
    receipt = {
        "kind": fields.pop("kind"),
        "event_id": message["command_id"],
        "event_type": message["command_type"],
        "producer": message["sender"],
        "context": message["owner"],
        "correlation_id": message.get("correlation_id") or "",
        "causation_id": message.get("causation_id"),
        "published_at": message["issued_at"],
        "attempt": 1,
        **fields,
    }
    telemetry.delivery_done(receipt)
    try:
        transport.send_receipt(receipt)
    except Exception as exc:
        log.warning("command record for %s not sent: %s", message["command_id"], exc)


@dataclass
class Sent:
    command_id: str
    reply: dict
    elapsed: float


@tracing.traced_command
def send_command(command: Any, *, sender: str, timeout: float, correlation_id: str | None = None,
                 causation_id: str | None = None) -> Sent:
    """Send `command` to its owner and wait up to `timeout` seconds for the reply.

    Raises CommandTimeout when no reply came in time and CommandUnsent when the broker
    failed; either way the command may still take effect, and the caller compensates.
    """
    command_type = type(command).__name__
    owner = command_class(command_type).owner
    issued = datetime.now(timezone.utc)
    message = {
        "command_id": str(uuid.uuid4()),
        "command_type": command_type,
        "version": command_class(command_type).schema_version,
        "sender": sender,
        "owner": owner,
        "correlation_id": correlation_id,
        "causation_id": causation_id,
        "issued_at": iso(issued),
        "expires_at": iso(issued + timedelta(seconds=timeout)),
        "payload": to_payload(command),
        **tracing.current_fields(),  # traceparent, tracestate: the owner continues this trace
    }
    _record(message, kind="command", outcome="sent", sent_at=message["issued_at"])
    try:
        app.send_task(COMMAND_TASK, args=[message], queue=owner, routing_key=owner,
                      expires=issued + timedelta(seconds=timeout),
                      retry=True, retry_policy=transport.PUBLISH_RETRY_POLICY)
        popped = broker.blocking_client().blpop([_reply_key(message["command_id"])], timeout=timeout)
    except Exception as exc:  # the broker failed: whether the command left is unknown
        _record(message, kind="reply", outcome="unsent", error=f"broker error: {exc}",
                finished_at=now_iso())
        raise CommandUnsent(f"{command_type} to {owner} failed: {exc}", command_type=command_type,
                            owner=owner) from exc
    elapsed = (datetime.now(timezone.utc) - issued).total_seconds()
    if popped is None:
        _record(message, kind="reply", outcome="timeout", error=f"no reply within {timeout:g}s",
                finished_at=now_iso())
        raise CommandTimeout(command_type, owner, timeout)
    return Sent(message["command_id"], json.loads(popped[1]), elapsed)


class _CommandLineage:
    """What events published while carrying out a command inherit: its correlation, and it as cause."""

    def __init__(self, message: dict):
        self.correlation_id = message.get("correlation_id") or str(uuid.uuid4())
        self.event_id = message["command_id"]


def execute(message: dict) -> dict:
    """Carry out one command in its owner's context; returns the reply (not yet sent)."""
    try:
        command = validate_command(message["command_type"], message["payload"])
        owner = command_class(message["command_type"]).owner
        expires_at = parse(message["expires_at"])
    except (ContractError, KeyError, ValueError) as exc:
        return {"ok": False, "outcome": "invalid", "reason": f"invalid command: {exc}"}
    fn = registry.command_handler(owner, message["command_type"])
    if fn is None:
        return {"ok": False, "outcome": "invalid", "reason": f"{owner} has no handler for {message['command_type']}"}
    if datetime.now(timezone.utc) > expires_at:
        return {"ok": False, "outcome": "expired", "reason": "arrived after its sender gave up"}
    token = current_envelope.set(_CommandLineage(message))
    try:
        with inbox_transaction(owner, message["command_id"], message["command_type"]) as inbox:
            if inbox is None:
                return _stored_reply(owner, message["command_id"])
            reply = dict(fn(command))
            reply.setdefault("outcome", "ok" if reply.get("ok") else "refused")
            if datetime.now(timezone.utc) > expires_at:
                raise CommandExpired()
            inbox.reply = reply
            inbox.save(using=owner, update_fields=["reply"])
    except CommandExpired:
        return {"ok": False, "outcome": "expired", "reason": "its sender gave up while it ran; undone"}
    finally:
        current_envelope.reset(token)
    return reply


def _stored_reply(owner: str, command_id: str) -> dict:
    """The reply a redelivered command got the first time (its effects committed with it)."""
    stored = InboxMessage.objects.using(owner).filter(event_id=command_id).values_list("reply", flat=True).first()
    if stored is None:  # a row from before replies were stored
        return {"ok": False, "outcome": "duplicate", "reason": "already carried out; its reply is unknown"}
    return {**stored, "redelivered": True}


@shared_task(name=COMMAND_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
@tracing.traced_command_task
def command(message: dict) -> str:
    started = now_iso()
    reply = execute(message)
    if reply["outcome"] != "expired":
        key = _reply_key(message.get("command_id", "unknown"))
        with tracing.replying(message):
            conn = broker.client()
            conn.rpush(key, json.dumps(reply))
            conn.expire(key, REPLY_TTL)
    _record(message, kind="reply", outcome=reply["outcome"], error=reply.get("reason", ""),
            received_at=started, started_at=started, finished_at=now_iso())
    return reply["outcome"]
