from dataclasses import dataclass
from typing import ClassVar

from contracts import register


@register
@dataclass(frozen=True)
class ProbePinged:
    """A test event: the payments-side probe handler records `probe_id`, after
    sleeping `sleep` seconds, unless `fail` tells it to raise."""

    schema_version: ClassVar[int] = 1
    producer: ClassVar[str] = "inventory"
    probe_id: str
    sleep: float = 0.0
    fail: bool = False


from contracts import register_command  # noqa: E402


@register_command
@dataclass(frozen=True)
class RecordProbe:
    """A test command for payments: record `probe_id` after sleeping `sleep` seconds."""

    schema_version: ClassVar[int] = 1
    owner: ClassVar[str] = "payments"
    probe_id: str
    sleep: float = 0.0
