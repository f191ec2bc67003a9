"""Many messages per task execution for a batching context (the dashboard), in a prefork worker.

A Celery strategy (see celery.worker.strategy): the worker's main process keeps the
requests of the batching context's deliveries and receipt messages instead of handing
each to the pool. When the pool has no batch of ours running, everything waiting goes
to it as one job (eventbus.ingest.write_batch: one transaction, one bulk insert, one
broadcast); while it runs, new requests wait for the next one. Nothing ever waits to
fill a batch: a quiet system pays no latency, a busy one gets big batches.

Every message is acknowledged from the main process (where the consumer's connection
lives) once the job that wrote it returned: at-least-once is kept. A job the pool lost
(a killed child) rejects its messages back to the queue, where inboxes and log keys
make them duplicates. Up to PREFETCH extra messages are fetched for this.

Holding many unacknowledged messages exposes a flaw of kombu's Redis transport when the
broker goes away (Consumer below): without it the worker died in 2 runs of 4 of the
broker-restart fault tests.
"""

from __future__ import annotations

import logging

from celery.worker import state
from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.strategy import default
from kombu.transport.virtual.base import QoS as VirtualQoS

from eventbus import registry

log = logging.getLogger("eventbus.batching")

PREFETCH = 200
MAX_BATCH = 500


def batched_context(task_name: str, args) -> str | None:
    """The batching context a request is for, or None (it runs as a task as usual)."""
    from eventbus import transport

    if task_name == transport.DELIVER_TASK:
        context = args[0] if args else None
    elif task_name in (transport.RECEIPTS_TASK, transport.RECEIPT_TASK):
        context = transport.RECEIPT_QUEUE
    else:
        return None
    return context if isinstance(context, str) and registry.batch_writer(context) is not None else None


class _Batches:
    """The requests of one worker process waiting for the pool, per context."""

    def __init__(self):
        self.waiting: dict[str, list] = {}
        self.running: dict[str, list] = {}  # context -> the requests of its job in the pool
        self.raised_qos = None

    def add(self, consumer, context: str, req) -> None:
        qos = consumer.qos
        if qos is not None and qos is not self.raised_qos:  # a new connection has a new QoS
            self.raised_qos = qos
            qos.increment_eventually(PREFETCH)
        self.waiting.setdefault(context, []).append(req)
        self.submit(consumer, context)

    def forget_connection(self) -> None:
        """The broker connection is lost. Celery's clean-up flushes the pool, which drops
        jobs not yet handed to the child without calling back: a batch in flight must not
        block the next ones forever. What waits was fetched on the lost connection: the
        broker gives it back (or lost it, and the relay resends)."""
        for reqs in [*self.waiting.values(), *self.running.values()]:
            for req in reqs:
                state.task_ready(req, successful=False)
        self.waiting.clear()
        self.running.clear()
        self.raised_qos = None

    def submit(self, consumer, context: str) -> None:
        if context in self.running or not self.waiting.get(context):
            return
        reqs = self.waiting[context][:MAX_BATCH]
        del self.waiting[context][:MAX_BATCH]
        self.running[context] = reqs
        for req in reqs:
            state.task_accepted(req)
        items = [(req.task_name, list(req.args), dict(req.kwargs)) for req in reqs]

        def done(_result, reqs=reqs):
            self.finish(consumer, context, reqs, ok=True)

        def lost(_exc_info, reqs=reqs):
            self.finish(consumer, context, reqs, ok=False)

        try:
            consumer.pool.apply_async(run_batch, args=(context, items), callback=done, error_callback=lost)
        except Exception:
            log.exception("batch of %s not handed to the pool", len(reqs))
            self.finish(consumer, context, reqs, ok=False)

    def finish(self, consumer, context: str, reqs, *, ok: bool) -> None:
        current = getattr(consumer.task_consumer, "channel", None)
        to_ack = []
        for req in reqs:
            try:
                channel = getattr(req.message, "channel", current)
                if channel is not current or getattr(channel, "closed", False):
                    # Fetched on a connection that has since been lost: the broker gives
                    # it back by itself (its redelivery is a duplicate); acking on the
                    # dead channel would only fail.
                    pass
                elif ok:
                    to_ack.append(req)
                else:  # back to the queue: its redelivery is a duplicate where it was written
                    req.reject(requeue=True)
            except Exception as exc:  # the connection went: the broker gives it back unacked
                log.warning("reject of %s failed: %s", req.id, exc)
        acknowledge_all(to_ack)
        for req in reqs:
            state.task_ready(req, successful=ok)
        if self.running.get(context) is reqs:  # not a job from before a lost connection
            del self.running[context]
            self.submit(consumer, context)


def acknowledge_all(reqs) -> None:
    """Ack the messages of a batch, all on one channel, in one Redis round trip: kombu's
    Redis QoS acks one message per MULTI/ZREM/HDEL, which made the acks most of the
    dashboard worker's main process. Another transport, or an error, acks one by one."""
    qos = getattr(reqs[0].message.channel, "qos", None) if len(reqs) > 1 else None
    remove = getattr(qos, "_remove_from_indices", None)
    if remove is not None:
        try:
            with qos.pipe_or_acquire() as pipe:
                for req in reqs:
                    remove(req.message.delivery_tag, pipe)
                pipe.execute()
        except Exception as exc:  # the connection went: the acks below fail alike, or the broker gives them back
            log.warning("acks of a batch of %s in one round trip failed: %s", len(reqs), exc)
        else:
            for req in reqs:  # what kombu's ack does after its round trip
                VirtualQoS.ack(qos, req.message.delivery_tag)
                req.message._state = "ACK"
                req.acknowledged = True
            return
    for req in reqs:
        try:
            req.acknowledge()
        except Exception as exc:
            log.warning("ack of %s failed: %s", req.id, exc)


_batches = _Batches()


class Consumer(CeleryConsumer):
    """Celery's consumer (CELERY_WORKER_CONSUMER), closing the channels that hold unacked
    messages itself when the broker connection is lost.

    kombu 5.7's Redis channel, closed while its BRPOP is in flight on a dead socket, raises
    from the read before it marks itself closed. Celery's clean-up then clears the
    transport's client (`collect()`) and closes the connection, which closes that channel
    again: giving back its unacked messages needs a new Redis client, built from the
    cleared client: AttributeError "'NoneType' object has no attribute 'hostname'", an
    unrecoverable error that stopped the worker. A worker with a batch in hand almost always
    holds unacked messages, so it died there in 2 runs of 4. Closing those channels first,
    while the transport is whole, lets the second try succeed: the messages go back to the
    queue, or, with the broker down, stay in its unacked index (given back after the
    visibility timeout) or are lost with it (the relay resends: a new broker epoch).
    The batches forget that connection too (_Batches.forget_connection).
    """

    def on_connection_error_after_connected(self, exc):
        close_holding_channels(self.connection)
        _batches.forget_connection()
        super().on_connection_error_after_connected(exc)


def close_holding_channels(connection) -> None:
    transport = getattr(connection, "_transport", None) if connection is not None else None
    channels = list(getattr(transport, "channels", None) or [])
    default = getattr(connection, "_default_channel", None)
    if default is not None and default not in channels:
        channels.append(default)
    for channel in channels:
        qos = getattr(channel, "_qos", None)
        if getattr(channel, "closed", True) or not getattr(qos, "_delivered", None):
            continue
        for _ in range(2):  # the first try may fail in the BRPOP read, before the close proper
            try:
                channel.close()
            except Exception as exc:
                log.info("closing a channel after the broker connection was lost: %s", exc)
            if channel.closed:
                break


def strategy(task, app, consumer, **kwargs):
    """Celery's default strategy, except that requests of a batching context join a batch."""
    run_one = consumer.on_task_request

    def handle(req):
        context = batched_context(req.task_name, req.args)
        if context is None:
            return run_one(req)
        _batches.add(consumer, context, req)

    # The default strategy hands every request to consumer.on_task_request, read once here.
    consumer.on_task_request = handle
    try:
        return default(task, app, consumer, **kwargs)
    finally:
        consumer.on_task_request = run_one


def run_batch(context: str, items: list) -> list[str]:
    """In the pool child: write the batch; a message that cannot be written is handled alone."""
    from eventbus import ingest, tasks, tracing, transport
    from eventbus.delivery import now_iso

    batch = []
    for name, args, kwargs in items:
        if name == transport.DELIVER_TASK:
            envelope = args[1] if len(args) > 1 else kwargs.get("envelope")
            batch.append(ingest.Delivery(envelope, sent_at=kwargs.get("sent_at", args[2] if len(args) > 2 else None),
                                         received_at=now_iso(), attempt=int(kwargs.get("attempt", 1))))
        elif name == transport.RECEIPTS_TASK:
            batch.append(ingest.Receipts(args[0] if args else kwargs.get("items", []),
                                         (args[1] if len(args) > 1 else kwargs.get("views")) or {}))
        else:  # one receipt, from before receipts were coalesced
            batch.append(ingest.Receipts([args[0]] if args else [], {}))
    deliveries = [i for i, item in enumerate(batch) if isinstance(item, ingest.Delivery)]
    with tracing.delivering_batch(context, [batch[i].envelope for i in deliveries]) as outcomes_of_deliveries:
        outcomes = tasks.write_or_fall_back(context, batch)
        outcomes_of_deliveries([outcomes[i] for i in deliveries])
    return outcomes
