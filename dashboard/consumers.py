"""The /ws/events/ consumer: a snapshot on connect, then log entries in batches.

One Hub per process holds the channel-layer subscription and frames for every
socket. Frames are paced: the first after a quiet spell at once, then at most one
every FRAME_INTERVAL (20 a second), whatever the load; entries arriving between
frames ride together as {"type": "batch"}. Every
QUEUES_INTERVAL a {"type": "queues"} message (queue depths, consumer online,
handled and failed counts) rides along; its `seq` is the newest entry in the log
and does not advance the client's seq (a client behind it for long has a gap). So does
a {"type": "edges"} message: the edge and node figures of dashboard/edges.py.
Customer emails are masked per connection unless the user is staff.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.layers import get_channel_layer
from redis.exceptions import ConnectionError as RedisConnectionError

from dashboard import edges, health, log_queries
from dashboard.privacy import masked, may_see_emails
from dashboard.services import GROUP
from eventbus import telemetry

log = logging.getLogger("dashboard.consumers")

# At most this many frames a second per socket; entries arriving between frames ride together.
FRAME_INTERVAL = 0.05
QUEUES_INTERVAL = 1.0
# Entries waiting for the next frame; past this many the oldest go (pages refetch them by seq).
MAX_PENDING = 20000
# Frames a socket may have waiting to be written; past this the oldest go (a seq gap).
MAX_SOCKET_BACKLOG = 100


_queues_cache: tuple[float, dict] | None = None
# online / paused / offline as the workers tell it (health.consumers asks them, which may
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
            _consumers["status"] = await asyncio.to_thread(health.consumers)
        except Exception as exc:
            log.warning("consumer status unavailable: %s", exc)

    _consumers["task"] = asyncio.ensure_future(ask())


def _queues_message() -> dict:
    """Shared by every socket of this process for half a tick: one look at the broker, not one each."""
    global _queues_cache
    now = time.monotonic()
    if _queues_cache is None or now - _queues_cache[0] > QUEUES_INTERVAL / 2:
        queues = {**health.queues(), "consumers": health.with_restarts(dict(_consumers["status"]))}
        _queues_cache = (now, {"type": "queues", "seq": log_queries.last_seq(), "queues": queues})
    return _queues_cache[1]


class Hub:
    """The sockets of one process and its one channel-layer subscription.

    The hub joins the group once, receives each group message once and hands every
    socket the same frame: one text per audience (staff, public — masked by
    dashboard.privacy, once per frame), encoded once. The first frame after a quiet
    spell leaves at once (leading edge), later ones at most every FRAME_INTERVAL,
    whatever arrived meanwhile riding together. Sends are handed to the server
    without waiting for the client, so a slow socket never slows the others; one
    whose backlog passes MAX_SOCKET_BACKLOG frames loses the oldest, which its page
    sees as a seq gap and refetches. One queues ticker per process.
    """

    def __init__(self, layer, loop):
        self.layer, self.loop = layer, loop
        self.sockets: set[EventStreamConsumer] = set()
        self.pending: list[dict] = []
        self.pending_queues: dict | None = None
        self.pending_edges: dict | None = None
        self.edges_task: asyncio.Task | None = None
        self.channel: str | None = None
        self.last_frame_at = -FRAME_INTERVAL
        self.flusher: asyncio.Task | None = None
        self.receiver: asyncio.Task | None = None
        self.ticker: asyncio.Task | None = None
        self.frames = 0

    async def join(self, socket) -> None:
        if self.channel is None:
            self.channel = await self.layer.new_channel()
        await self._subscribe()
        self.sockets.add(socket)
        if self.receiver is None or self.receiver.done():
            self.receiver = asyncio.ensure_future(self._receive())
        if self.ticker is None or self.ticker.done():
            self.ticker = asyncio.ensure_future(self._tick_queues())

    def leave(self, socket) -> None:
        self.sockets.discard(socket)

    async def _subscribe(self, tries: int = 3) -> None:
        # After Redis restarts, the layer's pooled connection fails once before it
        # reconnects: try again rather than refuse the socket.
        for attempt in range(1, tries + 1):
            try:
                await self.layer.group_add(GROUP, self.channel)
                return
            except (RedisConnectionError, OSError):
                if attempt == tries:
                    raise
                await asyncio.sleep(0.1 * attempt)

    async def _receive(self) -> None:
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarted: read again (the tick subscribes again)
                log.warning("channel layer receive failed: %s", exc)
                await asyncio.sleep(0.5)
                continue
            kind = message.get("type")
            if kind == "log.entries":
                self.pending.extend(message.get("items") or [])
                if len(self.pending) > MAX_PENDING:
                    del self.pending[: len(self.pending) - MAX_PENDING]
                self._schedule_flush()
            elif kind == "queues.tick":
                await self._queues_tick()

    def _schedule_flush(self) -> None:
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.ensure_future(self._flush_soon())

    async def _flush_soon(self) -> None:
        # Leading edge: after a quiet spell the frame leaves now (after what this
        # read brought in); otherwise at the next frame slot.
        wait = self.last_frame_at + FRAME_INTERVAL - self.loop.time()
        await asyncio.sleep(max(0.0, wait))
        items, self.pending = self.pending, []
        queues, self.pending_queues = self.pending_queues, None
        items.sort(key=lambda item: item.get("seq", float("inf")))  # a views message (no seq) last
        if queues is not None:
            items.append(queues)
        edge_figures, self.pending_edges = self.pending_edges, None
        if edge_figures is not None:
            items.append(edge_figures)
        if not items:
            return
        self.last_frame_at = self.loop.time()
        message = items[0] if len(items) == 1 else {"type": "batch", "items": items}
        texts: dict[bool, str] = {}
        for socket in list(self.sockets):
            if socket.unmasked not in texts:
                texts[socket.unmasked] = json.dumps(message if socket.unmasked else masked(message))
            socket.offer(texts[socket.unmasked])
        self.frames += 1

    async def _tick_queues(self) -> None:
        # The tick travels through the channel layer to the hub's own channel. Besides
        # pacing the queues message, it keeps the layer's blocking read (BZPOPMIN, 5 s)
        # from idling as long as redis-py's socket timeout, and it renews the group
        # membership (a Redis that lost its data forgot it).
        while True:
            await asyncio.sleep(QUEUES_INTERVAL)
            if not self.sockets:
                continue
            try:
                await self.layer.group_add(GROUP, self.channel)
                await self.layer.send(self.channel, {"type": "queues.tick"})
            except Exception as exc:
                log.warning("queues tick not sent: %s", exc)

    async def _queues_tick(self) -> None:
        _refresh_consumers()
        try:
            self.pending_queues = await database_sync_to_async(_queues_message)()
        except Exception as exc:  # the page keeps its last numbers; the next tick tries again
            log.warning("queues message failed: %s", exc)
            return
        self._schedule_flush()
        # The edge figures ride the same tick (dashboard/edges.py), computed in a task and a
        # thread of their own (not the one thread the other reads share): the read loop never
        # waits for them, and one computation runs at a time.
        if self.edges_task is None or self.edges_task.done():
            self.edges_task = asyncio.ensure_future(self._edges(self.pending_queues["queues"].get("depths")))

    async def _edges(self, depths) -> None:
        try:
            self.pending_edges = await database_sync_to_async(edges.live_message, thread_sensitive=False)(depths)
        except Exception as exc:  # the page keeps its last figures; the next tick tries again
            log.warning("edges message failed: %s", exc)
            return
        self._schedule_flush()


_hubs: dict[int, Hub] = {}


def hub_for(layer) -> Hub:
    """The hub of this event loop and channel layer (one per Daphne process)."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(id(loop))
    if hub is None or hub.layer is not layer or hub.loop is not loop:
        hub = _hubs[id(loop)] = Hub(layer, loop)
    return hub


class EventStreamConsumer(AsyncJsonWebsocketConsumer):
    """One socket: a snapshot, then the hub's frames. It joins no group of its own."""

    # No channel of its own (Channels would read one per socket): the hub holds the one subscription.
    channel_layer_alias = "eventflow-sockets-take-no-channel"

    async def connect(self):
        self.unmasked = may_see_emails(self.scope.get("user"))
        self.ready = False
        self.backlog: list[str] = []  # frames that came before the snapshot left
        self.sender: asyncio.Task | None = None
        self.hub = hub_for(get_channel_layer())
        await self.hub.join(self)
        await self.accept()
        telemetry.websocket_opened(self)
        try:
            snapshot = await database_sync_to_async(health.snapshot)()
            await self.send_json(snapshot if self.unmasked else masked(snapshot))
        finally:
            self.ready = True
            self._drain()

    async def disconnect(self, code):
        telemetry.websocket_closed(self)
        self.hub.leave(self)
        if self.sender is not None:
            self.sender.cancel()

    def offer(self, text: str) -> None:
        """A frame from the hub: sent in order, never waited for by the hub."""
        self.backlog.append(text)
        if len(self.backlog) > MAX_SOCKET_BACKLOG:  # this client cannot keep up: it refetches the gap
            del self.backlog[: len(self.backlog) - MAX_SOCKET_BACKLOG]
        if self.ready:
            self._drain()

    def _drain(self) -> None:
        if self.backlog and (self.sender is None or self.sender.done()):
            self.sender = asyncio.ensure_future(self._send_backlog())

    async def _send_backlog(self) -> None:
        while self.backlog:
            text = self.backlog.pop(0)
            try:
                await self.send(text_data=text)
                telemetry.websocket_frame_sent()
            except Exception as exc:  # the socket is gone; disconnect() follows
                log.info("frame not sent: %s", exc)
                self.backlog.clear()
                return

    # --- websocket frame handlers ---------------------------------------------
    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})
