"""The /ws/events/ consumer: a snapshot on connect, then log entries in batches.

Frames are paced: at most one every FRAME_INTERVAL (20 a second), whatever the
load; entries arriving between frames ride together as {"type": "batch"}. Every
QUEUES_INTERVAL a {"type": "queues"} message (queue depths, consumer online,
handled and failed counts) rides along; its `seq` is the newest entry in the log
and does not advance the client's seq (a client behind it for long has a gap).
Customer emails are masked per connection unless the user is staff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict

from channels.db import database_sync_to_async
from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from redis.exceptions import ConnectionError as RedisConnectionError

from dashboard import selectors
from dashboard.privacy import masked, may_see_emails
from dashboard.services import GROUP

log = logging.getLogger("dashboard.consumers")

# At most this many frames a second per socket; entries arriving between frames ride together.
FRAME_INTERVAL = 0.05
QUEUES_INTERVAL = 1.0
# A socket that cannot keep up loses its oldest entries past this many; it refetches them by seq.
MAX_PENDING = 5000


_queues_cache: tuple[float, dict] | None = None
# online / paused / offline as the workers tell it (selectors.consumers asks them, which may
# take up to a second when one is down): refreshed in a thread of its own, never on the tick.
CONSUMERS_INTERVAL = 2.0
_consumers: dict = {"at": -CONSUMERS_INTERVAL, "status": {}, "task": None}


def _refresh_consumers() -> None:
    now = time.monotonic()
    if now - _consumers["at"] < CONSUMERS_INTERVAL or (_consumers["task"] and not _consumers["task"].done()):
        return
    _consumers["at"] = now

    async def ask():
        try:
            _consumers["status"] = await asyncio.to_thread(selectors.consumers)
        except Exception as exc:
            log.warning("consumer status unavailable: %s", exc)

    _consumers["task"] = asyncio.ensure_future(ask())


def _queues_message() -> dict:
    """Shared by every socket of this process for half a tick: one look at the broker, not one each."""
    global _queues_cache
    now = time.monotonic()
    if _queues_cache is None or now - _queues_cache[0] > QUEUES_INTERVAL / 2:
        queues = {**selectors.queues(), "consumers": dict(_consumers["status"])}
        _queues_cache = (now, {"type": "queues", "seq": selectors.last_seq(), "queues": queues})
    return _queues_cache[1]


# Every socket of a process receives the same entries: mask each one once (by seq), not once a socket.
_MASKED_CACHE_SIZE = 4096
_masked_by_seq: OrderedDict[int, dict] = OrderedDict()


def masked_entry(item: dict) -> dict:
    seq = item.get("seq")
    if not isinstance(seq, int):
        return masked(item)
    hit = _masked_by_seq.get(seq)
    if hit is None:
        hit = _masked_by_seq[seq] = masked(item)
        if len(_masked_by_seq) > _MASKED_CACHE_SIZE:
            _masked_by_seq.popitem(last=False)
    return hit


class EventStreamConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.pending: list[dict] = []
        self.pending_queues: dict | None = None
        self.flusher: asyncio.Task | None = None
        self.ticker: asyncio.Task | None = None
        self.last_frame_at = 0.0
        self.unmasked = may_see_emails(self.scope.get("user"))
        await self._join_group()
        await self.accept()
        await self.send_json(self.for_viewer(await database_sync_to_async(selectors.snapshot)()))
        self.last_frame_at = asyncio.get_running_loop().time()
        self.ticker = asyncio.ensure_future(self._tick_queues())

    async def dispatch(self, message):
        # Channels closes stale database connections (a thread hop) before every
        # message of every socket; this consumer touches the database only through
        # database_sync_to_async, which does that itself, so skip the per-message cost.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def _join_group(self, tries: int = 3):
        # After Redis restarts, the layer's pooled connection fails once before it
        # reconnects: try again rather than refuse the socket.
        for attempt in range(1, tries + 1):
            try:
                await self.channel_layer.group_add(GROUP, self.channel_name)
                return
            except (RedisConnectionError, OSError):
                if attempt == tries:
                    raise
                await asyncio.sleep(0.1 * attempt)

    async def disconnect(self, code):
        await self.channel_layer.group_discard(GROUP, self.channel_name)
        for task in (self.flusher, self.ticker):
            if task is not None:
                task.cancel()

    def for_viewer(self, message: dict) -> dict:
        return message if self.unmasked else masked(message)

    # --- websocket frame handlers ---------------------------------------------
    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    # --- channel-layer message handlers -----------------------------------------
    async def log_entries(self, message):
        self.pending.extend(message["items"])
        if len(self.pending) > MAX_PENDING:
            del self.pending[: len(self.pending) - MAX_PENDING]
        self._schedule_flush()

    # --- pacing -------------------------------------------------------------------
    def _schedule_flush(self):
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.ensure_future(self._flush_soon())

    async def _flush_soon(self):
        loop = asyncio.get_running_loop()
        # Wait for the frame slot; what arrives meanwhile joins this frame.
        await asyncio.sleep(max(FRAME_INTERVAL, self.last_frame_at + FRAME_INTERVAL - loop.time()))
        items, self.pending = self.pending, []
        queues, self.pending_queues = self.pending_queues, None
        items.sort(key=lambda item: item.get("seq", float("inf")))  # a views message (no seq) last
        if not self.unmasked:
            items = [masked_entry(item) for item in items]
        if queues is not None:
            items.append(queues)
        if not items:
            return
        self.last_frame_at = loop.time()
        await self.send_json(items[0] if len(items) == 1 else {"type": "batch", "items": items})

    async def _tick_queues(self):
        # The tick travels through the channel layer to this very socket. Besides pacing
        # the queues message, it keeps the layer's blocking read (BZPOPMIN, 5 s) from
        # idling as long as redis-py's default socket timeout (also 5 s): an idle read
        # that loses that race kills every socket of the process with a TimeoutError.
        while True:
            await asyncio.sleep(QUEUES_INTERVAL)
            try:
                await self.channel_layer.send(self.channel_name, {"type": "queues.tick"})
            except Exception as exc:
                log.warning("queues tick not sent: %s", exc)

    async def queues_tick(self, message):
        _refresh_consumers()
        try:
            self.pending_queues = await database_sync_to_async(_queues_message)()
        except Exception as exc:  # the page keeps its last numbers; the next tick tries again
            log.warning("queues message failed: %s", exc)
            return
        self._schedule_flush()
