"""Read-only looks at the broker: queue depths and health."""

from __future__ import annotations

import uuid

import redis
from django.conf import settings

_clients: dict[int, redis.Redis] = {}  # one per socket timeout, made on first use


def _client(socket_timeout: int) -> redis.Redis:
    if socket_timeout not in _clients:
        _clients[socket_timeout] = redis.Redis.from_url(settings.BROKER_URL, socket_timeout=socket_timeout,
                                                        socket_connect_timeout=2)
    return _clients[socket_timeout]


def client() -> redis.Redis:
    return _client(2)


def blocking_client() -> redis.Redis:
    """A client for blocking reads (a command's reply): its socket waits as long as the read may."""
    return _client(600)


def queue_depths(queues: list[str]) -> dict[str, int]:
    """Messages waiting in each context's queue (not counting ones a worker holds)."""
    if settings.BROKER_IS_AMQP:
        return _amqp_depths(queues)
    pipe = client().pipeline()
    for queue in queues:
        pipe.llen(queue)
    return dict(zip(queues, pipe.execute()))


def _amqp_depths(queues: list[str]) -> dict[str, int]:
    """RabbitMQ: the ready count of a passive declare; a queue not declared yet holds nothing."""
    from amqp.exceptions import NotFound

    from config.celery import app

    depths = {}
    with app.connection_for_read() as conn:
        channel = conn.channel()
        for queue in queues:
            try:
                depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
            except NotFound:  # closes the channel
                depths[queue] = 0
                channel = conn.channel()
    return depths


def ping() -> None:
    """Raises unless the bus's Redis answers (and RabbitMQ, when it is the Celery broker)."""
    client().ping()
    if settings.BROKER_IS_AMQP:
        from config.celery import app

        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)


EPOCH_KEY = "eventflow:broker-epoch"


def epoch() -> str:
    """An id the broker keeps while it keeps its data; a new one after it lost them.

    Relayed rows remember it; a row sent under an older epoch was lost with the
    broker's data and must be sent again. Redis: a key in the broker itself. RabbitMQ:
    a durable queue `eventflow.epoch` stands for its data; when it is gone (a reset, a
    new node), a new id replaces the one kept in our Redis.
    """
    conn = client()
    if settings.BROKER_IS_AMQP and not _amqp_marker_kept():
        conn.set(EPOCH_KEY, uuid.uuid4().hex)
    current = conn.get(EPOCH_KEY)
    if current is None:
        conn.set(EPOCH_KEY, uuid.uuid4().hex, nx=True)
        current = conn.get(EPOCH_KEY)
    return current.decode()


EPOCH_QUEUE = "eventflow.epoch"


def _amqp_marker_kept() -> bool:
    """Whether RabbitMQ still has the durable epoch queue; declares it when it has not."""
    from amqp.exceptions import NotFound

    from config.celery import app

    with app.connection_for_read() as conn:
        try:
            conn.channel().queue_declare(queue=EPOCH_QUEUE, passive=True)
            return True
        except NotFound:
            conn.channel().queue_declare(queue=EPOCH_QUEUE, durable=True, auto_delete=False)
            return False


def _sent_key(event_id) -> str:
    return f"eventflow:sent:{event_id}"


SENT_MARK_TTL = 3600  # seconds; a mark gone while its event is still unconfirmed only costs a resend


def mark_sent(event_ids) -> None:
    """Written after an event's deliveries: if the broker loses a tail of its writes, it loses
    this mark with (or after) the deliveries, so a sent event without its mark was lost."""
    pipe = client().pipeline(transaction=False)
    for event_id in event_ids:
        pipe.set(_sent_key(event_id), 1, ex=SENT_MARK_TTL)
    pipe.execute()


def sent_marks(event_ids) -> set[str]:
    """The event ids among `event_ids` whose sent mark the broker still has."""
    event_ids = [str(e) for e in event_ids]
    pipe = client().pipeline(transaction=False)
    for event_id in event_ids:
        pipe.exists(_sent_key(event_id))
    return {event_id for event_id, found in zip(event_ids, pipe.execute()) if found}


def clear_sent_marks(event_ids) -> None:
    """Confirmed events need their marks no more: Redis holds marks only of events in flight."""
    if event_ids:
        client().delete(*[_sent_key(e) for e in event_ids])


def times_redelivered(message_id: str) -> int:
    """How many times the message `message_id` came back to a worker (a redelivery keeps its
    id; the first delivery is not counted). The count lives a few visibility timeouts: long
    enough to see a message come back."""
    ttl = int(10 * settings.EVENTFLOW_VISIBILITY_TIMEOUT)
    key = f"eventflow:taken:{message_id}"
    pipe = client().pipeline(transaction=False)
    pipe.incr(key)
    pipe.expire(key, ttl)
    return int(pipe.execute()[0])
