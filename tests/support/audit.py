"""A Jepsen-style audit of delivery: what was committed against what each subscriber got.

For every event committed to an outbox since a mark, each subscriber's inbox
must hold it (or its dead letters) — lost = 0 — and no effect may be applied
twice. The dashboard log must hold it too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from eventbus import registry
from eventbus.models import DeadLetter, InboxMessage, OutboxMessage


def contexts() -> list[str]:
    return [alias for alias in settings.DATABASES if alias != "default"]


def outbox_mark() -> dict[str, int]:
    """The last outbox row id of each context: audit what comes after."""
    return {
        ctx: OutboxMessage.objects.using(ctx).order_by("-id").values_list("id", flat=True).first() or 0
        for ctx in contexts()
    }


@dataclass
class Audit:
    committed: int = 0
    lost: dict[str, list[str]] = field(default_factory=dict)  # subscriber -> event ids it never got
    missing_from_log: list[str] = field(default_factory=list)
    applied_twice: list[str] = field(default_factory=list)

    @property
    def lost_count(self) -> int:
        return sum(len(ids) for ids in self.lost.values())

    def assert_clean(self):
        assert self.committed > 0, "the audit saw no committed event"
        assert self.lost_count == 0, f"lost deliveries: { {k: v[:5] for k, v in self.lost.items()} }"
        assert not self.missing_from_log, f"missing from the dashboard log: {self.missing_from_log[:5]}"
        assert not self.applied_twice, f"applied twice: {self.applied_twice[:5]}"


def audit_since(mark: dict[str, int], *, applied_twice: list[str] | None = None) -> Audit:
    from dashboard.models import LogEntry

    result = Audit(applied_twice=list(applied_twice or []))
    expected: dict[str, set[str]] = {}
    committed: set[str] = set()
    for ctx in contexts():
        for event_id, event_type in OutboxMessage.objects.using(ctx).filter(id__gt=mark.get(ctx, 0)).values_list("event_id", "event_type"):
            committed.add(str(event_id))
            for subscriber in registry.subscribers_of(event_type):
                expected.setdefault(subscriber, set()).add(str(event_id))
    result.committed = len(committed)
    for subscriber, ids in expected.items():
        got = {str(e) for e in InboxMessage.objects.using(subscriber).values_list("event_id", flat=True).filter(event_id__in=list(ids))}
        got |= set(DeadLetter.objects.using(subscriber).filter(event_id__in=list(ids)).values_list("event_id", flat=True))
        lost = sorted(ids - got)
        if lost:
            result.lost[subscriber] = lost
    logged = set(LogEntry.objects.using("dashboard").filter(kind="event", event_id__in=list(committed)).values_list("event_id", flat=True))
    result.missing_from_log = sorted(committed - logged)
    return result
