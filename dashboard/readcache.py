"""Answers of the expensive anonymous reads (/api/contexts/, /api/comparison/, text search
of /api/events/), computed at most once per EVENTFLOW_READ_CACHE_SECONDS by this process:
a loop of requests costs one computation per window, not one each. Masking per viewer
happens after, so one cached answer serves staff and anonymous viewers alike."""

from __future__ import annotations

import hashlib
from typing import Any, Callable

from django.conf import settings
from django.core.cache import caches

CACHE = "reads"
# Keys of the answers a staff action changes.
CONTEXTS, COMPARISON = "contexts", "comparison"


def cached(key: str, compute: Callable[[], Any], *, timeout: float | None = None) -> Any:
    """`compute()`'s answer, reused for EVENTFLOW_READ_CACHE_SECONDS (or `timeout`: an answer
    that cannot change any more, such as a past window of the log)."""
    seconds = settings.EVENTFLOW_READ_CACHE_SECONDS
    if seconds <= 0:
        return compute()
    return caches[CACHE].get_or_set(_digest(key), compute, timeout=timeout or seconds)


def forget(key: str) -> None:
    """Drop one answer (a staff action changed what it shows)."""
    caches[CACHE].delete(_digest(key))


def _digest(key: str) -> str:  # keys carry user text (a search): keep them short and safe for any backend
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
