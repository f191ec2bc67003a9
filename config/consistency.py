"""Settings that must agree with each other, checked when the settings load: a process
started with an inconsistent set refuses to start and says which rule it broke."""

from __future__ import annotations

from collections.abc import Mapping


def longest_retry_delay(s: Mapping) -> float:
    """The longest countdown a delivery retry waits (the backoff doubles on each try)."""
    return s["EVENTFLOW_RETRY_BACKOFF"] * 2 ** max(s["EVENTFLOW_MAX_TRIES"] - 2, 0)


def redelivery_window(s: Mapping) -> float:
    """How long after its first delivery a copy of an event may still arrive: the sweep's
    resend of an overdue row, a message restored after the visibility timeout, the retries."""
    tries = max(s["EVENTFLOW_MAX_TRIES"], s.get("EVENTFLOW_TRANSIENT_TRIES", 0))
    retries = sum(min(s["EVENTFLOW_RETRY_BACKOFF"] * 2 ** i, longest_retry_delay(s)) for i in range(tries - 1))
    return (s["EVENTFLOW_SWEEP_GRACE"] + s["EVENTFLOW_REDELIVER_AFTER"] + s["EVENTFLOW_VISIBILITY_TIMEOUT"]
            + retries)


def settings_problems(s: Mapping) -> list[str]:
    """Every broken rule, as a sentence naming the settings to change."""
    problems = []
    visibility = s["EVENTFLOW_VISIBILITY_TIMEOUT"]
    delay = longest_retry_delay(s)
    if delay >= visibility:
        problems.append(
            f"EVENTFLOW_RETRY_BACKOFF={s['EVENTFLOW_RETRY_BACKOFF']:g} doubled over EVENTFLOW_MAX_TRIES="
            f"{s['EVENTFLOW_MAX_TRIES']} waits up to {delay:g}s before a retry, not below "
            f"EVENTFLOW_VISIBILITY_TIMEOUT={visibility:g}s: Redis would hand the waiting retry to a "
            f"second worker and the retry chain would fork. Lower the backoff or the tries, or raise the timeout.")
    if s.get("EVENTFLOW_TRANSIENT_TRIES", s["EVENTFLOW_MAX_TRIES"]) < s["EVENTFLOW_MAX_TRIES"]:
        problems.append(f"EVENTFLOW_TRANSIENT_TRIES={s['EVENTFLOW_TRANSIENT_TRIES']} must be at least "
                        f"EVENTFLOW_MAX_TRIES={s['EVENTFLOW_MAX_TRIES']}: transient errors get more tries, not fewer")
    if s.get("EVENTFLOW_MAX_DELIVERIES", 1) < 1:
        problems.append(f"EVENTFLOW_MAX_DELIVERIES={s['EVENTFLOW_MAX_DELIVERIES']} must be 1 or more")
    window = redelivery_window(s)
    if s["EVENTFLOW_RETENTION_INBOX"] <= window:
        problems.append(
            f"EVENTFLOW_RETENTION_INBOX={s['EVENTFLOW_RETENTION_INBOX']:g}s must be longer than the longest "
            f"redelivery window ({window:g}s: sweep grace + EVENTFLOW_REDELIVER_AFTER + visibility timeout + "
            f"retries), or a late copy of an event would be applied twice.")
    for name in ("EVENTFLOW_RETENTION_OUTBOX", "EVENTFLOW_RETENTION_DEAD_LETTERS", "EVENTFLOW_RETENTION_DASHBOARD",
                 "EVENTFLOW_RETENTION_INTERVAL"):
        if s[name] <= 0:
            problems.append(f"{name}={s[name]:g} must be more than 0 seconds")
    if s["EVENTFLOW_RETENTION_DASHBOARD_ROWS"] < 100:
        problems.append(f"EVENTFLOW_RETENTION_DASHBOARD_ROWS={s['EVENTFLOW_RETENTION_DASHBOARD_ROWS']} "
                        f"must keep at least 100 log entries")
    return problems
