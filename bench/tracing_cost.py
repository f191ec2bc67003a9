"""What tracing costs (phase `tracing`): one event hop's code, off against on, in one process.

The hop's code is the real one: publish() of a BenchPinged in an inventory transaction
(outbox row, commit, the relay's send to its subscribers' queues) and deliver() of that
envelope in payments (inbox row, handler, commit). It runs `calls` times with tracing
off, as the stack runs with OTEL_EXPORTER_OTLP_ENDPOINT unset, and `calls` times on:
eventbus.tracing set up with the SDK's provider and batch processor, and an exporter that
drops every span (what exporting over the network costs is the collector's business, in
another thread). Off and on alternate in rounds, so a neighbour's load falls on both.
Only this process's CPU is counted (time.process_time, every thread).

Off, each hook is one `if` in front of the call: `off_hook_us` times the four hooks of a hop
(publish, send, delivery, handler) against calling through directly.
"""

from __future__ import annotations

import time
import timeit
import uuid

from django.db import transaction

ROUNDS = 4


def tracing_cost(calls: int = 200) -> dict:
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    from eventbus import tracing

    class Dropping(SpanExporter):
        def export(self, spans):
            return SpanExportResult.SUCCESS

    if tracing.enabled():
        return {"not_measured": "this process already traces (OTEL_EXPORTER_OTLP_ENDPOINT is set)"}
    per_round = max(calls // ROUNDS, 1)
    cpu = {"off": 0.0, "on": 0.0}
    hop = _hop()
    hop()  # warm imports and caches
    for _ in range(ROUNDS):
        for mode in ("off", "on"):
            if mode == "on":
                tracing.setup("bench", exporter=Dropping())
            try:
                c0 = time.process_time()
                for _ in range(per_round):
                    hop()
                cpu[mode] += time.process_time() - c0
            finally:
                tracing.off()
    off_ms = cpu["off"] * 1000 / (per_round * ROUNDS)
    on_ms = cpu["on"] * 1000 / (per_round * ROUNDS)
    hooks_us = off_hook_us()
    return {
        "calls_each": per_round * ROUNDS,
        "cpu_ms_per_hop_off": round(off_ms, 3),
        "cpu_ms_per_hop_on": round(on_ms, 3),
        "on_over_off": round(on_ms / off_ms, 2) if off_ms else None,
        "off_hook_us_per_hop": round(hooks_us, 2),
        "off_hooks_share_of_hop": round(hooks_us / 1000 / off_ms, 5) if off_ms else None,
    }


def _hop():
    from bench.events import BenchPinged
    from eventbus import publish
    from eventbus.delivery import now_iso
    from eventbus.tasks import deliver

    def hop():
        with transaction.atomic(using="inventory"):
            envelope = publish(BenchPinged(ping_id=str(uuid.uuid4()), sent_at=time.time()), context="inventory")
        # The stack's payments worker gets the same event: a fresh id keeps this delivery a first one.
        deliver.run("payments", {**envelope.as_dict(), "event_id": str(uuid.uuid4())}, sent_at=now_iso())

    return hop


def off_hook_us(number: int = 50_000) -> float:
    """Microseconds the four tracing hooks of one hop add when off (best of 5 timeit runs)."""
    from eventbus import tracing

    def plain(*args):
        return None

    sent, delivered = tracing.traced_send(plain), tracing.traced_delivery(plain)
    envelope = {"event_type": "BenchPinged", "event_id": "x"}

    def with_hooks():
        with tracing.publishing(None, "inventory"):
            pass
        sent([], envelope)
        delivered(None, "payments", envelope)
        with tracing.handling(plain):
            pass

    def without():
        plain([], envelope)
        plain(None, "payments", envelope)

    best = min(timeit.repeat(with_hooks, number=number, repeat=5))
    base = min(timeit.repeat(without, number=number, repeat=5))
    return max(best - base, 0.0) * 1e6 / number
