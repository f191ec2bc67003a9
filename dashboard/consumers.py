"""The /ws/events/ consumer: a snapshot on connect, then log entries in batches."""

from __future__ import annotations

import asyncio

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from dashboard import selectors
from dashboard.services import GROUP

# At most this many frames a second per socket; entries arriving between frames ride together.
FRAME_INTERVAL = 0.05


class EventStreamConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.pending: list[dict] = []
        self.flusher: asyncio.Task | None = None
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()
        await self.send_json(await database_sync_to_async(selectors.snapshot)())

    async def disconnect(self, code):
        await self.channel_layer.group_discard(GROUP, self.channel_name)
        if self.flusher is not None:
            self.flusher.cancel()

    # --- websocket frame handlers ---------------------------------------------
    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    # --- channel-layer message handlers -----------------------------------------
    async def log_entries(self, message):
        self.pending.extend(message["items"])
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.ensure_future(self._flush_soon())

    async def _flush_soon(self):
        await asyncio.sleep(FRAME_INTERVAL)
        items, self.pending = self.pending, []
        items.sort(key=lambda item: item["seq"])
        if len(items) == 1:
            await self.send_json(items[0])
        elif items:
            await self.send_json({"type": "batch", "items": items})
