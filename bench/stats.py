"""Small statistics and the broker-quiet check shared by the measurements."""

from __future__ import annotations

import math
import time

from devstack.processes import CONTEXT_QUEUES


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest-rank percentile (p99 of 200 samples is the 198th smallest)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {
        "samples": len(ms),
        "p50_ms": _r(percentile(ms, 50)),
        "p99_ms": _r(percentile(ms, 99)),
        "mean_ms": _r(sum(ms) / len(ms)) if ms else None,
        "max_ms": _r(max(ms)) if ms else None,
    }


def samples_ms(seconds: list[float]) -> list[float]:
    """The samples themselves, in ms, for the latency plots (bench/plots.py)."""
    return [round(s * 1000, 3) for s in seconds]


def _r(value: float | None, places: int = 2) -> float | None:
    return None if value is None else round(value, places)


def ratio(value: float | None, base: float | None) -> float | None:
    if value is None or not base:
        return None
    return round(value / base, 2)


def broker_busy(broker) -> int:
    """Messages waiting in the context queues plus those a worker holds unacknowledged (RabbitMQ
    does not count those: there, events sent and not yet in every subscriber's inbox instead)."""
    from django.conf import settings

    if settings.BROKER_IS_AMQP:
        from eventbus.broker import queue_depths
        from eventbus.models import OutboxMessage

        unconfirmed = sum(OutboxMessage.objects.using(ctx).filter(sent_at__isnull=False, confirmed_at__isnull=True,
                                                                  parked_at__isnull=True).count()
                          for ctx in CONTEXT_QUEUES)
        return sum(queue_depths(list(CONTEXT_QUEUES)).values()) + unconfirmed
    pipe = broker.pipeline()
    for queue in CONTEXT_QUEUES:
        pipe.llen(queue)
    pipe.hlen("unacked")
    return sum(pipe.execute())


def wait_broker_quiet(broker, *, timeout: float = 10.0, interval: float = 0.002) -> bool:
    deadline = time.monotonic() + timeout
    while broker_busy(broker):
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True
