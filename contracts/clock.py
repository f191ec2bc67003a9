"""The one timestamp format of eventflow: UTC, ISO 8601 with microseconds and a "Z".
Written by `iso` / `now_iso`, read (any ISO 8601 time) by `parse` / `parse_or_none`."""

from __future__ import annotations

from datetime import datetime, timezone


def iso(moment: datetime) -> str:
    """`moment` (timezone-aware) as an eventflow timestamp."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def now_iso() -> str:
    return iso(datetime.now(timezone.utc))


def parse(value: str) -> datetime:
    """An ISO 8601 time ("Z" or an offset) as a datetime; ValueError if `value` is not one."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def parse_or_none(value) -> datetime | None:
    """`value` as a datetime, or None when it is no ISO 8601 string (a stamp missing or malformed)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse(value)
    except ValueError:
        return None
