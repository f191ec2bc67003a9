"""publish(): write an event to the context's outbox inside the caller's transaction."""

from __future__ import annotations

from typing import Any

from config.routers import context_names
from contracts import Envelope, build_envelope
from eventbus import tracing
from eventbus.lineage import current_envelope
from eventbus.models import OutboxMessage


def publish(
    event: Any,
    *,
    context: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> Envelope:
    """Record `event` as published by `context`; it leaves only after the commit.

    Inside a handler the correlation id and cause default to the event being
    handled. Raises ContractError if the event does not fit the catalog.
    """
    if context not in context_names():
        raise ValueError(f"unknown context {context!r}")
    cause = current_envelope.get()
    if cause is not None:
        correlation_id = correlation_id or cause.correlation_id
        causation_id = causation_id or cause.event_id
    with tracing.publishing(event, context) as trace_fields:  # {} unless this process traces
        envelope = build_envelope(
            event, producer=context, correlation_id=correlation_id, causation_id=causation_id, **trace_fields
        )
        OutboxMessage.objects.using(context).create(
            event_id=envelope.event_id,
            event_type=envelope.event_type,
            correlation_id=envelope.correlation_id,
            envelope=envelope.as_dict(),
        )
    from eventbus.relay import relay_after_commit

    relay_after_commit(context, envelope.as_dict())
    return envelope
