"""The one timestamp format of eventflow: UTC, ISO 8601 with microseconds and a "Z"."""

from __future__ import annotations

from datetime import datetime, timezone


def iso(moment: datetime) -> str:
    """`moment` (timezone-aware) as an eventflow timestamp."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(datetime.now(timezone.utc))
