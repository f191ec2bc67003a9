"""Bench-only events, registered in the catalog by the bench plugin app."""

from dataclasses import dataclass
from typing import ClassVar

from contracts import register


@register
@dataclass(frozen=True)
class BenchPinged:
    """One measured hop: inventory publishes it, payments' bench handler records when
    its transaction committed. `sent_at` is the publisher's time.time() before publish."""

    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "inventory"
    ping_id: str
    sent_at: float


@register
@dataclass(frozen=True)
class BenchBroadcast:
    """A fan-out probe: only the dashboard takes it (it takes every event) and streams it
    to the websockets. `sent_at` is the publisher's time.time()."""

    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "inventory"
    probe_id: str
    sent_at: float
