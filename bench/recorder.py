"""Where bench tasks and handlers record their timestamps: Redis database broker+2.

One RPUSH per record, the same cost for the baseline task and the eventflow handler.
"""

from __future__ import annotations

import json

import redis
from django.conf import settings

from config.env import redis_url_with_db

_client: redis.Redis | None = None


def client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(redis_url_with_db(settings.REDIS_URL, 2))
    return _client


def record(key: str, **fields) -> None:
    client().rpush(key, json.dumps(fields))
