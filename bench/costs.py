"""Where the time of one hop goes (`--profile`): the framework's entry points run in this
process, N times each, timed plainly and then under cProfile.

Like a worker (CELERY_DB_REUSE_MAX is set), the database connections stay open across
calls. The calls are the real ones: publish() in an inventory transaction; deliver() of
that envelope in payments (its receipt goes to the process's receipt buffer) and in the
dashboard (through the batch writer, a batch of one here); a receipts message of one
receipt in the dashboard; and, for comparison, one send_task plus the baseline hop's body.
CPU time counts every thread of the process (the receipt buffer's and the batch writer's too).
"""

from __future__ import annotations

import cProfile
import pstats
import time
import uuid

from django.db import close_old_connections, transaction

CALLS = 100


def _close_all():
    pass  # workers keep their connections across tasks (CELERY_DB_REUSE_MAX)


def _timed(fn, calls: int) -> tuple[float, float, pstats.Stats]:
    _close_all()
    fn(0)  # warm caches and imports
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(calls):
        _close_all()
        fn(i)
        _close_all()
    wall_ms = (time.perf_counter() - t0) * 1000 / calls
    cpu_ms = (time.process_time() - c0) * 1000 / calls
    # CPU time, not wall time: on a shared machine the wall clock also counts others' work.
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    for i in range(calls):
        _close_all()
        fn(i)
        _close_all()
    profile.disable()
    return wall_ms, cpu_ms, pstats.Stats(profile)


def _top(stats: pstats.Stats, calls: int, limit: int = 22) -> list[list]:
    rows = []
    for (path, line, name), (cc, nc, tt, ct, callers) in stats.stats.items():
        short = path.split("site-packages/")[-1].replace("/work/main/", "")
        rows.append([f"{name} ({short}:{line})", round(ct * 1000 / calls, 3), round(nc / calls, 1)])
    rows.sort(key=lambda r: r[1], reverse=True)
    return rows[:limit]


def breakdown(calls: int = CALLS) -> dict:
    from bench.events import BenchPinged
    from bench.tasks import BASELINE_TASK, baseline_hop
    from config.celery import app
    from eventbus import publish
    from eventbus.delivery import OK, Outcome, build_receipt, now_iso
    from eventbus.tasks import deliver, receipts_task

    envelopes: list[dict] = []

    def do_publish(i):
        with transaction.atomic(using="inventory"):
            envelopes.append(publish(BenchPinged(ping_id=str(uuid.uuid4()), sent_at=time.time()),
                                     context="inventory").as_dict())

    def fresh(i):  # a never-seen envelope, so the inbox takes it (not a duplicate)
        env = dict(envelopes[i % len(envelopes)])
        env["event_id"] = str(uuid.uuid4())
        return env

    def do_deliver_payments(i):
        deliver.run("payments", fresh(i), sent_at=now_iso())

    def do_deliver_dashboard(i):
        deliver.run("dashboard", fresh(i), sent_at=now_iso())

    def do_receipt(i):
        env = fresh(i)
        receipts_task.run([build_receipt("payments", env, Outcome(OK, now_iso(), now_iso()), sent_at=now_iso(),
                                         received_at=now_iso(), attempt=1)], {})

    def do_baseline(i):
        app.send_task(BASELINE_TASK, args=["bench:costs:sink", 0, ["orders"], time.time()], queue="bench-sink",
                      routing_key="bench-sink")
        baseline_hop.run("bench:costs:sink", 0, ["orders"], time.time())

    result = {}
    for name, fn in (("publish (inventory, 1 event, 2 subscribers)", do_publish),
                     ("deliver payments (BenchPinged)", do_deliver_payments),
                     ("deliver dashboard (BenchPinged)", do_deliver_dashboard),
                     ("receipts message (1 receipt) in dashboard", do_receipt),
                     ("baseline: send_task + hop body", do_baseline)):
        wall, cpu, stats = _timed(fn, calls)
        result[name] = {"wall_ms_per_call": round(wall, 3), "cpu_ms_per_call": round(cpu, 3),
                        "cprofile_cpu_ms_per_call": _top(stats, calls, limit=40)}
    close_old_connections()
    _cleanup()
    return result


def _cleanup():
    from bench.recorder import client
    from django.conf import settings
    import redis

    client().delete("bench:costs:sink")
    redis.Redis.from_url(settings.BROKER_URL).delete("bench-sink")
