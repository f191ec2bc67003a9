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
