"""The /ws/events/ consumer in-process (channels.testing.WebsocketCommunicator, in-memory layer)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from contracts import Customer, Line, OrderRequested, build_envelope
from dashboard import services
from dashboard.consumers import EventStreamConsumer

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer", "CONFIG": {"capacity": 10000}}}


@pytest.fixture
def memory_layer(settings):
    settings.CHANNEL_LAYERS = IN_MEMORY
    yield get_channel_layer()


def run(coroutine_fn):
    return async_to_sync(coroutine_fn)()


async def open_socket(user=None, app=None, headers=None):
    communicator = WebsocketCommunicator(app or EventStreamConsumer.as_asgi(), "/ws/events/", headers=headers or [])
    if app is None:
        communicator.scope["user"] = user or AnonymousUser()
    connected, _ = await communicator.connect(timeout=10)
    return communicator, connected


async def frames_until(communicator, predicate, timeout=30):
    """Frames (batches unpacked into items) until predicate(item); returns [(received_at, frame)], items."""
    frames, items = [], []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = await communicator.receive_json_from(timeout=max(0.1, deadline - time.monotonic()))
        frames.append((time.monotonic(), frame))
        new = frame["items"] if frame["type"] == "batch" else [frame]
        items.extend(new)
        if any(predicate(item) for item in new):
            return frames, items
    raise AssertionError(f"no matching message in {timeout}s")


def order_requested(email):
    return build_envelope(
        OrderRequested(order_id=str(uuid.uuid4()), customer=Customer(name="Jane", email=email),
                       lines=(Line(sku="SKU-WS", qty=1),), payment_token="tok_visa"),
        producer="orders")


@pytest.mark.parametrize("staff", [False, True], ids=["anonymous", "staff"])
def test_snapshot_then_entries_with_emails_masked_unless_staff(live_db, memory_layer, staff):
    user = None
    if staff:
        user = get_user_model().objects.create_user(f"ws-{uuid.uuid4().hex[:8]}", password="x" * 12, is_staff=True)
    envelope = order_requested("jane.ws@example.com")

    async def scenario():
        communicator, connected = await open_socket(user)
        assert connected
        snapshot = await communicator.receive_json_from(timeout=10)
        assert snapshot["type"] == "snapshot"
        assert {"seq", "topology", "events", "views", "queues"} <= set(snapshot)
        await database_sync_to_async(services.log_event)(envelope)
        _, items = await frames_until(
            communicator, lambda m: m.get("type") == "event" and m["envelope"]["event_id"] == envelope.event_id)
        await communicator.disconnect()
        return snapshot, items

    snapshot, items = run(scenario)
    message = next(m for m in items if m.get("type") == "event" and m["envelope"]["event_id"] == envelope.event_id)
    assert message["seq"] > snapshot["seq"]
    email = message["envelope"]["payload"]["customer"]["email"]
    assert email == ("jane.ws@example.com" if staff else "j***@example.com")


def test_bursts_ride_in_batches(live_db, memory_layer):
    count = 400

    async def scenario():
        communicator, connected = await open_socket()
        assert connected
        await communicator.receive_json_from(timeout=10)  # snapshot
        base = 10**12 + uuid.uuid4().int % 10**6 * 1000  # seqs of our own, far above the log's
        for i in range(count):  # one group message per entry, as the dashboard worker sends them
            await memory_layer.group_send(services.GROUP, {"type": "log.entries", "items": [
                {"type": "receipt", "seq": base + i, "receipt": {"event_id": f"e{i}"}}]})
            if i % 40 == 0:
                await asyncio.sleep(0.01)
        frames, items = await frames_until(communicator, lambda m: m.get("seq") == base + count - 1)
        await communicator.disconnect()
        return base, frames, items

    base, frames, items = run(scenario)
    ours = [m["seq"] for m in items if m.get("type") == "receipt" and m["seq"] >= base]
    assert ours == list(range(base, base + count))  # all of them, in order
    batches = [frame for _, frame in frames if frame["type"] == "batch"]
    assert any(len(frame["items"]) > 1 for frame in batches)
    assert len(frames) < count  # grouped, not one frame per entry


def test_queues_messages_come_unasked(live_db, memory_layer):
    async def scenario():
        communicator, connected = await open_socket()
        assert connected
        await communicator.receive_json_from(timeout=10)
        _, items = await frames_until(communicator, lambda m: m.get("type") == "queues", timeout=30)
        await communicator.disconnect()
        return next(m for m in items if m.get("type") == "queues")

    message = run(scenario)
    assert isinstance(message["seq"], int)
    assert {"depths", "online", "handled", "failures"} <= set(message["queues"])
    assert "dashboard" in message["queues"]["online"]
    assert isinstance(message["queues"]["consumers"], dict)  # the workers' own word, once known


@pytest.mark.parametrize("origin,accepted", [
    (None, False), ("http://evil.example.com", False), ("http://localhost", True),
], ids=["missing", "foreign", "own-host"])
def test_the_full_asgi_app_refuses_a_foreign_or_missing_origin(live_db, memory_layer, origin, accepted):
    from config.asgi import application

    headers = [(b"origin", origin.encode())] if origin else []

    async def scenario():
        communicator, connected = await open_socket(app=application, headers=headers)
        if connected:
            first = await communicator.receive_json_from(timeout=10)
            await communicator.disconnect()
            return connected, first
        return connected, None

    connected, first = run(scenario)
    assert connected is accepted
    if accepted:
        assert first["type"] == "snapshot"
