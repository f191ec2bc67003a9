"""The envelope every event travels in (see docs/ARCHITECTURE.md, "The envelope and the catalog")."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from contracts.clock import now_iso, parse
from contracts.registry import ContractError, event_class, to_payload, validate_payload

ENVELOPE_FIELDS = (
    "event_id",
    "event_type",
    "version",
    "producer",
    "correlation_id",
    "causation_id",
    "occurred_at",
    "payload",
)
# W3C trace context (https://www.w3.org/TR/trace-context/) of the span that published the
# event; present only when its process traces (OTEL_EXPORTER_OTLP_ENDPOINT, eventbus/tracing.py).
# A delivery continues that trace, so one order is one trace across every process.
TRACE_FIELDS = ("traceparent", "tracestate")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
_TRACESTATE_MAX = 512  # the W3C limit a propagator may keep


@dataclass(frozen=True)
class Envelope:
    """An event with its identity and lineage. `payload` is the JSON form of `event`."""

    event_id: str
    event_type: str
    version: int
    producer: str
    correlation_id: str
    causation_id: str | None
    occurred_at: str
    payload: dict
    event: Any
    traceparent: str | None = None
    tracestate: str | None = None

    def as_dict(self) -> dict:
        data = {name: getattr(self, name) for name in ENVELOPE_FIELDS}
        data.update({name: getattr(self, name) for name in TRACE_FIELDS if getattr(self, name) is not None})
        return data

    @property
    def trace_id(self) -> str | None:
        """The W3C trace id this event belongs to, when its publisher traced."""
        return trace_id_of(self.traceparent)


def trace_id_of(traceparent) -> str | None:
    """The trace id of a W3C traceparent; None for none or a malformed one."""
    return traceparent.split("-")[1] if isinstance(traceparent, str) and _TRACEPARENT.match(traceparent) else None


def _check_uuid(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise ContractError(f"expected a UUID string, got {type(value).__name__}", field=field)
    try:
        uuid.UUID(value)
    except ValueError:
        raise ContractError(f"not a UUID: {value!r}", field=field) from None
    return value


def _check_trace(data: dict) -> None:
    """traceparent and tracestate are optional; when present they follow the W3C format."""
    traceparent, tracestate = data.get("traceparent"), data.get("tracestate")
    if traceparent is not None and not (isinstance(traceparent, str) and _TRACEPARENT.match(traceparent)):
        raise ContractError("not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)", field="traceparent")
    if tracestate is not None:
        if not isinstance(tracestate, str) or len(tracestate) > _TRACESTATE_MAX:
            raise ContractError(f"expected a string of at most {_TRACESTATE_MAX} characters", field="tracestate")
        if traceparent is None:
            raise ContractError("tracestate without traceparent", field="tracestate")


def build_envelope(
    event: Any,
    *,
    producer: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    traceparent: str | None = None,
    tracestate: str | None = None,
) -> Envelope:
    """Wrap an event object. A new flow gets a new correlation id; the trace fields, when
    given, are the W3C trace context of the publishing span."""
    event_type = type(event).__name__
    cls = event_class(event_type)
    if cls is not type(event):
        raise ContractError(f"{event_type} is not the registered class", field="event_type")
    if producer != cls.producer:
        raise ContractError(
            f"{event_type} is produced by {cls.producer!r}, not {producer!r}", field="producer"
        )
    event_id = str(uuid.uuid4())
    correlation_id = _check_uuid(correlation_id, "correlation_id") if correlation_id else str(uuid.uuid4())
    if causation_id is not None:
        _check_uuid(causation_id, "causation_id")
    _check_trace({"traceparent": traceparent, "tracestate": tracestate})
    payload = to_payload(event)
    return Envelope(
        event_id=event_id,
        event_type=event_type,
        version=cls.schema_version,
        producer=producer,
        correlation_id=correlation_id,
        causation_id=causation_id,
        occurred_at=now_iso(),
        payload=payload,
        event=validate_payload(event_type, payload),
        traceparent=traceparent,
        tracestate=tracestate,
    )


def parse_envelope(data: Any) -> Envelope:
    """Check a received envelope against the catalog; raise ContractError naming the field."""
    if not isinstance(data, dict):
        raise ContractError(f"expected an object, got {type(data).__name__}", field="envelope")
    missing = [name for name in ENVELOPE_FIELDS if name not in data]
    if missing:
        raise ContractError("missing field", field=missing[0])
    extra = sorted(set(data) - set(ENVELOPE_FIELDS) - set(TRACE_FIELDS))
    if extra:
        raise ContractError("unexpected field", field=extra[0])
    _check_uuid(data["event_id"], "event_id")
    _check_trace(data)
    _check_uuid(data["correlation_id"], "correlation_id")
    if data["causation_id"] is not None:
        _check_uuid(data["causation_id"], "causation_id")
    if not isinstance(data["event_type"], str):
        raise ContractError("expected a string", field="event_type")
    cls = event_class(data["event_type"])
    if data["version"] != cls.schema_version:
        raise ContractError(
            f"{cls.__name__} version {data['version']!r} is not supported (expected {cls.schema_version})",
            field="version",
        )
    if data["producer"] != cls.producer:
        raise ContractError(
            f"{cls.__name__} is produced by {cls.producer!r}, not {data['producer']!r}", field="producer"
        )
    if not isinstance(data["occurred_at"], str):
        raise ContractError("expected an ISO 8601 string", field="occurred_at")
    try:
        parse(data["occurred_at"])
    except ValueError:
        raise ContractError(f"not an ISO 8601 time: {data['occurred_at']!r}", field="occurred_at") from None
    try:
        event = validate_payload(cls.__name__, data["payload"])
    except ContractError as exc:
        field = f"payload.{exc.field}" if exc.field and exc.field != "payload" else "payload"
        raise ContractError(str(exc).split(": ", 1)[-1], field=field) from None
    return Envelope(
        event_id=data["event_id"],
        event_type=data["event_type"],
        version=data["version"],
        producer=data["producer"],
        correlation_id=data["correlation_id"],
        causation_id=data["causation_id"],
        occurred_at=data["occurred_at"],
        payload=data["payload"],
        event=event,
        traceparent=data.get("traceparent"),
        tracestate=data.get("tracestate"),
    )
