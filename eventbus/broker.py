"""Read-only looks at the broker: queue depths and health."""

from __future__ import annotations

import redis
from django.conf import settings

_client: redis.Redis | None = None


def client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(settings.BROKER_URL, socket_timeout=2, socket_connect_timeout=2)
    return _client


def queue_depths(queues: list[str]) -> dict[str, int]:
    """Messages waiting in each context's queue (not counting ones a worker holds)."""
    pipe = client().pipeline()
    for queue in queues:
        pipe.llen(queue)
    return dict(zip(queues, pipe.execute()))


def ping() -> None:
    client().ping()
