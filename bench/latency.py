"""Figures 1 and 2: the bare Celery hop (latency and burst throughput) and one eventflow hop."""

from __future__ import annotations

import json
import time
import uuid

from bench.recorder import client as records
from bench.resources import CpuMeter
from bench.stats import samples_ms, summary_ms, wait_broker_quiet
from bench.tasks import BASELINE_TASK
from devstack.processes import CONTEXT_QUEUES

WARMUP = 5


def _app():
    from config.celery import app

    return app


def baseline_latency(broker, *, samples: int) -> dict:
    """Chains orders -> inventory -> payments -> dashboard, one at a time on a quiet broker;
    each hop's latency is from the sender's apply_async to the task running on the next queue."""
    app, hops = _app(), list(CONTEXT_QUEUES)
    latencies: list[float] = []
    chains = WARMUP + max(1, -(-samples // len(hops)))
    for n in range(chains):
        wait_broker_quiet(broker)
        key = f"bench:chain:{uuid.uuid4()}"
        app.send_task(BASELINE_TASK, args=[key, 0, hops, time.time()], queue=hops[0], routing_key=hops[0])
        for _ in hops:
            item = records().blpop([key], timeout=30)
            if item is None:
                raise RuntimeError(f"baseline chain {key} stalled")
            rec = json.loads(item[1])
            if n >= WARMUP:
                latencies.append(rec["done_at"] - rec["sent_at"])
    return {**summary_ms(latencies[:samples]), "latencies_ms": samples_ms(latencies[:samples])}


def baseline_burst(broker, *, tasks: int, stack=None) -> dict:
    """N one-hop tasks queued round-robin on the four queues while the workers' consumers are
    cancelled, then drained at once: what bare Celery workers do per second on this machine.
    (Sending them while the workers run would measure the sender, ~2-3 ms a send_task here.)"""
    app, key = _app(), f"bench:burst:{uuid.uuid4()}"
    queues = list(CONTEXT_QUEUES)
    wait_broker_quiet(broker)
    from eventbus.control import workers_of

    # Each queue's own worker only: add_consumer without a destination would make every
    # worker consume every queue for the rest of the run.
    owners = {queue: workers_of(queue) for queue in queues}
    for queue in queues:
        app.control.cancel_consumer(queue, destination=owners[queue], reply=True, timeout=5)
    try:
        sent_started = time.time()
        for i in range(tasks):
            queue = queues[i % len(queues)]
            app.send_task(BASELINE_TASK, args=[key, 0, [queue], time.time()], queue=queue, routing_key=queue)
        sent = time.time()
    finally:
        cpu = CpuMeter(stack).start() if stack else None
        started = time.time()
        for queue in queues:
            app.control.add_consumer(queue, destination=owners[queue], reply=True, timeout=5)
    deadline = time.monotonic() + 120 + tasks / 50
    while records().llen(key) < tasks:
        if time.monotonic() > deadline:
            raise RuntimeError(f"baseline burst: {records().llen(key)} of {tasks} done")
        time.sleep(0.01)
    if cpu:
        cpu.stop()
    done = [json.loads(raw)["done_at"] for raw in records().lrange(key, 0, -1)]
    records().delete(key)
    # Up to one task per worker ran before its consumer was cancelled (prefetch 1).
    early = sum(1 for t in done if t < started)
    last = max(done)
    return {
        "tasks": tasks,
        "send_seconds": round(sent - sent_started, 3),
        "ran_before_resume": early,
        "drain_seconds": round(last - started, 3),
        "tasks_per_s": round((tasks - early) / (last - started), 1),
        # What one bare task costs the stack's processes in CPU (load-independent, unlike tasks/s).
        "cpu_per_task": cpu.per(tasks) if cpu else None,
    }


def event_hop(broker, *, samples: int) -> dict:
    """BenchPinged published by inventory in its own transaction, one at a time on a quiet
    broker; the hop ends when payments' handler transaction (with its inbox row) committed."""
    from django.db import transaction

    from bench.events import BenchPinged
    from eventbus import publish

    total, handled, publish_cost = [], [], []
    for n in range(WARMUP + samples):
        wait_broker_quiet(broker)
        ping_id = str(uuid.uuid4())
        sent_at = time.time()
        with transaction.atomic(using="inventory"):
            publish(BenchPinged(ping_id=ping_id, sent_at=sent_at), context="inventory")
        committed = time.time()  # outbox row committed and the relay's after-commit send done
        item = records().blpop([f"bench:ping:{ping_id}"], timeout=30)
        if item is None:
            raise RuntimeError(f"BenchPinged {ping_id} was not handled in 30 s")
        rec = json.loads(item[1])
        if n >= WARMUP:
            total.append(rec["committed_at"] - sent_at)
            handled.append(rec["handled_at"] - sent_at)
            publish_cost.append(committed - sent_at)
    return {
        **summary_ms(total),
        "latencies_ms": samples_ms(total),
        "to_handler_start": summary_ms(handled),
        "publish_commit_relay": summary_ms(publish_cost),
    }
