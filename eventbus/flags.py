"""Runtime switches shared by every process of the system, kept in the broker's Redis.

A switch has a default from settings and a fixed set of allowed values; the
dashboard flips it, a context reads it on its next decision.
"""

from __future__ import annotations

from django.conf import settings

from eventbus import broker

PREFIX = "eventflow:flag:"

FLAGS = {
    # Where orders checks stock before asking for payment: its own local view
    # (event-driven) or a remote query to inventory (the hybrid of the lab).
    "stock_check": ("local", "remote"),
}


class FlagError(ValueError):
    pass


def _default(name: str) -> str:
    return getattr(settings, f"EVENTFLOW_{name.upper()}")


def get_flag(name: str) -> str:
    if name not in FLAGS:
        raise FlagError(f"unknown switch {name!r}")
    try:
        value = broker.client().get(PREFIX + name)
    except Exception:  # broker unreachable: the configured default holds
        value = None
    value = value.decode() if value else _default(name)
    return value if value in FLAGS[name] else _default(name)


def set_flag(name: str, value: str) -> str:
    if name not in FLAGS:
        raise FlagError(f"unknown switch {name!r}")
    if value not in FLAGS[name]:
        raise FlagError(f"{name} must be one of: {', '.join(FLAGS[name])}")
    broker.client().set(PREFIX + name, value)
    return value


def all_flags() -> dict[str, dict]:
    return {name: {"value": get_flag(name), "choices": list(choices)} for name, choices in FLAGS.items()}
