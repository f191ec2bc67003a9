"""The rate limit of order placement per client address (EVENTFLOW_ORDER_RATE_LIMIT).

A token bucket per address, in this process's memory (one Daphne serves the API):
"N/S" allows a burst of N placements, then one every S/N seconds. "0" turns it off.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from django.conf import settings

# Addresses remembered at most; the least recently seen is forgotten first (its bucket refills).
MAX_ADDRESSES = 10000

_buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # address -> (tokens, at)
_lock = threading.Lock()


def _rate() -> tuple[int, float] | None:
    raw = str(settings.EVENTFLOW_ORDER_RATE_LIMIT).strip()
    if raw in ("", "0", "off"):
        return None
    count, _, seconds = raw.partition("/")
    return int(count), float(seconds or 60)


def order_rate_wait(*, address: str) -> float:
    """Take one placement from `address`'s bucket: 0 when allowed, else the seconds to wait."""
    rate = _rate()
    if rate is None:
        return 0.0
    capacity, seconds = rate
    per_second = capacity / seconds
    now = time.monotonic()
    with _lock:
        tokens, at = _buckets.pop(address, (float(capacity), now))
        tokens = min(float(capacity), tokens + (now - at) * per_second)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / per_second
        _buckets[address] = (tokens - 1 if tokens >= 1 else tokens, now)
        while len(_buckets) > MAX_ADDRESSES:
            _buckets.popitem(last=False)
    return wait


def reset() -> None:
    """Forget every bucket (tests)."""
    with _lock:
        _buckets.clear()
