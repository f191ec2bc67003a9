"""A worker's Redis connections after the broker restarts (config/settings.py
CELERY_BROKER_TRANSPORT_OPTIONS), on a redis-server of the test's own.

Celery's remote control (the consumer status, detach and attach) is a fanout queue, which
kombu's Redis transport reads through pub/sub in the worker's one event loop. With redis-py
allowed to retry, a restart made it reconnect that pub/sub connection without subscribing
again and read from it forever: the worker's loop stopped, and with it every delivery to
that context. The error must reach kombu instead, so that Celery reconnects the consumer."""

from __future__ import annotations

import threading

import pytest
from django.conf import settings
from kombu import Connection, Consumer, Exchange, Producer, Queue

from devstack.redis import RedisServer

pytestmark = [pytest.mark.redis_broker]

FANOUT = Exchange("reconnect.pidbox", type="fanout")
WORK = Exchange("reconnect.work", type="direct")


def consuming(url: str, received: list) -> tuple[Connection, Consumer]:
    connection = Connection(url, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    queues = [Queue("reconnect.fan", FANOUT, auto_delete=True), Queue("reconnect.work", WORK, routing_key="w")]
    consumer = Consumer(connection, queues, accept=["json"],
                        callbacks=[lambda body, message: (received.append(body), message.ack())])
    consumer.consume()
    return connection, consumer


def drain_quietly(connection: Connection, seconds: int) -> None:
    for _ in range(seconds):
        try:
            connection.drain_events(timeout=1)
        except TimeoutError:
            pass


def test_after_a_broker_restart_the_pubsub_read_fails_instead_of_waiting_forever(tmp_path):
    server = RedisServer(tmp_path / "broker").start()
    try:
        received: list = []
        connection, _ = consuming(server.url, received)
        drain_quietly(connection, 1)  # subscribed: the fanout queue's pub/sub connection is open
        server.restart()

        outcome: dict = {}

        def drain() -> None:
            try:
                drain_quietly(connection, 5)
                outcome["result"] = "drained without noticing the restart"
            except connection.connection_errors as error:
                outcome["result"] = error

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        reader.join(20)
        assert not reader.is_alive(), "the read waits forever on a pub/sub connection that is subscribed to nothing"
        assert isinstance(outcome["result"], Exception), outcome["result"]
        connection.release()

        # What Celery does next: a new connection and consumer; the fanout queue receives again.
        connection, _ = consuming(server.url, received)
        drain_quietly(connection, 1)
        with Connection(server.url, transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS) as sender:
            Producer(sender).publish({"ping": 1}, exchange=FANOUT, declare=[FANOUT], serializer="json")
        for _ in range(10):
            if received:
                break
            drain_quietly(connection, 1)
        assert received == [{"ping": 1}]
        connection.release()
    finally:
        server.stop()
