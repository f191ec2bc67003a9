"""Shortcuts for the bus tests: publish a probe, count its effects, read the dashboard log."""

from __future__ import annotations

import uuid

from django.db import transaction

from eventbus import publish


def new_probe_id() -> str:
    return f"probe-{uuid.uuid4()}"


def publish_probe(probe_id: str, *, sleep: float = 0.0, fail: bool = False):
    from tests.probe.events import ProbePinged

    with transaction.atomic(using="inventory"):
        return publish(ProbePinged(probe_id=probe_id, sleep=sleep, fail=fail), context="inventory")


def probe_effects(probe_id: str) -> int:
    from tests.probe.models import ProbeEffect

    return ProbeEffect.objects.using("payments").filter(probe_id=probe_id).count()


def log_entries(event_id: str, **filters):
    from dashboard.models import LogEntry

    return list(LogEntry.objects.using("dashboard").filter(event_id=event_id, **filters).order_by("seq"))


def receipt_outcomes(event_id: str, context: str) -> list[str]:
    return [entry.outcome for entry in log_entries(event_id, kind="receipt", context=context)]


def unacked_deliveries(broker, queue: str) -> list[str]:
    """Event ids of the deliveries to `queue` that a worker took and has not acknowledged.

    Read from kombu's `unacked` hash of the Redis transport: [message, exchange, routing key].
    """
    import base64
    import json

    ids = []
    for raw in broker.hvals("unacked"):
        message, _exchange, routing_key = json.loads(raw)
        if routing_key != queue or message.get("headers", {}).get("task") != "eventbus.deliver":
            continue
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args, _kwargs, _embed = json.loads(body)
        ids.append(str(args[1]["event_id"]))
    return ids


def redelivered_after(event_id: str, context: str, moment: str) -> bool:
    """True once `context` handled `event_id` again after `moment` (an ISO time): an ok receipt
    that started after it (a new process), or a duplicate receipt (the inbox caught a second copy)."""
    receipts = log_entries(event_id, kind="receipt", context=context)
    return any(r.outcome == "duplicate" or (r.outcome == "ok" and (r.data.get("started_at") or "") > moment)
               for r in receipts)
