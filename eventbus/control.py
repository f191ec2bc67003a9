"""Take a context offline and back, with Celery's own consumer control; detach and attach.

A context's workers are named `<context>@<host>`, the n-th of a host `<context>@w<n>.<host>`
(devstack.processes.worker_argv): every worker of a context, on every host, answers.
Pausing tells them to stop consuming the context's queue (`cancel_consumer`);
messages keep arriving and wait in the queue. Resuming adds the queue back
(`add_consumer`) on those same workers only.
"""

from __future__ import annotations

import time

from django.conf import settings

from config import routers
from config.celery import app
from eventbus import broker, subscriptions

REPLY_TIMEOUT = 2.0
_status_cache: tuple[float, dict] = (0.0, {})


class ControlError(RuntimeError):
    """A control command could not be carried out (unknown context, no worker answered)."""


context_names = routers.context_names


def _check(context: str) -> None:
    if context not in context_names():
        raise ControlError(f"unknown context {context!r}; known: {', '.join(context_names())}")


def _connection():
    """A fresh broker connection per control call: a pooled one may be stale after the
    broker restarted, and a control broadcast does not reconnect by itself."""
    return app.connection_for_write()


def workers_of(context: str) -> list[str]:
    """The live workers that serve `context` (by their `<context>@host` name)."""
    with _connection() as conn:
        replies = app.control.ping(timeout=1.0, connection=conn) or []
    names = [name for reply in replies for name in reply]
    return sorted(name for name in names if name.split("@", 1)[0] == context)


def _invalidate() -> None:
    global _status_cache
    _status_cache = (0.0, {})


def _set_consuming(context: str, consuming: bool) -> list[str]:
    _check(context)
    workers = workers_of(context)
    if not workers:
        raise ControlError(f"no worker of {context} is running")
    command = app.control.add_consumer if consuming else app.control.cancel_consumer
    with _connection() as conn:
        replies = command(context, destination=workers, reply=True, timeout=REPLY_TIMEOUT, connection=conn) or []
    _invalidate()
    return sorted(name for reply in replies for name in reply)


def pause(context: str) -> list[str]:
    """Stop every worker of `context` consuming its queue; returns the workers that confirmed."""
    return _set_consuming(context, False)


def resume(context: str) -> list[str]:
    """Make every worker of `context` consume its queue again."""
    return _set_consuming(context, True)


def consumer_status(*, max_age: float = 1.0) -> dict[str, str]:
    """Per context: "online" (a worker consumes its queue), "paused" (workers run but none
    consumes it) or "offline" (no worker answered). Asked of the workers, cached `max_age` s."""
    global _status_cache
    checked, cached = _status_cache
    if cached and time.monotonic() - checked < max_age:
        return dict(cached)
    expected = len(context_names()) * settings.EVENTFLOW_WORKERS  # stop waiting once all answered
    with _connection() as conn:
        active = app.control.inspect(timeout=1.0, limit=expected, connection=conn).active_queues() or {}
    status = {}
    for context in context_names():
        mine = {worker: queues for worker, queues in active.items() if worker.split("@", 1)[0] == context}
        if not mine:
            status[context] = "offline"
        elif any(q.get("name") == context for queues in mine.values() for q in queues):
            status[context] = "online"
        else:
            status[context] = "paused"
    _status_cache = (time.monotonic(), status)
    return dict(status)


def contexts_state() -> list[dict]:
    """Each context with its consumer status and queue depth."""
    status = consumer_status()
    depths = broker.queue_depths(context_names())
    return [
        {"name": context, "consumer": status[context], "online": status[context] == "online",
         "queue_depth": depths.get(context, 0)}
        for context in context_names()
    ]


def _consume_if_running(context: str, consuming: bool) -> list[str]:
    try:
        return _set_consuming(context, consuming)
    except ControlError:
        return []  # no worker runs: the subscription alone decides


def detach(context: str) -> dict:
    """Stop routing events to `context` and stop its workers consuming (unlike pause, nothing
    waits for it in its queue); attach catches it up (eventbus/subscriptions.py)."""
    row = subscriptions.detach(context)
    return {"context": context, "workers": _consume_if_running(context, False), **subscriptions.state(row.context)}


def attach(context: str) -> dict:
    """Route events to `context` again, replay what it missed, and let its workers consume.
    Raises subscriptions.AttachRefused when what it missed is older than the replay window."""
    subscriptions.attach(context)
    return {"context": context, "workers": _consume_if_running(context, True), **subscriptions.state(context)}
