"""Figure 4: the highest rate of orders sustained for `duration` seconds with zero loss.

Orders are POSTed to /api/orders/ open-loop at a fixed offered rate (a request
every 1/rate seconds, whatever the answers take). A step is sustained when every
POST got its 202 at >= 95 % of the offered rate, the backlog left at the end
drained within max(3 s, 10 % of the step), every order was decided, and no event
committed to an outbox is missing from any subscriber's inbox (nor dead-lettered).
A calibration burst sets the first step (80 % of it); steps go up by 25 % until one
fails (at most four steps; `ceiling_found` says whether one did).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench import integrity, profiling, resources
from bench.client import post_order
from bench.products import BENCH_SKUS
from bench.stats import summary_ms

START_FRACTION, FACTOR, MAX_STEPS = 0.8, 1.25, 4


def offer(base_url: str, rate: float, seconds: float, threads: int = 8) -> dict:
    """POST round(rate * seconds) orders, one every 1/rate s; returns counts and timings."""
    total = max(1, round(rate * seconds))
    ok, errors, latencies = 0, [], []
    lock = threading.Lock()

    def one():
        nonlocal ok
        t0 = time.monotonic()
        try:
            post_order(base_url, BENCH_SKUS)
        except Exception as exc:
            with lock:
                errors.append(str(exc)[:200])
            return
        with lock:
            ok += 1
            latencies.append(time.monotonic() - t0)

    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for i in range(total):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(one)
    elapsed = time.monotonic() - start
    return {"offered": total, "ok": ok, "errors": len(errors), "error_examples": errors[:3],
            "achieved_per_s": round(ok / max(elapsed, total / rate), 2), "post": summary_ms(latencies)}


class QueueWatch:
    """Samples every context queue's depth twice a second in a thread."""

    def __init__(self, broker):
        self.broker = broker
        self.samples: list[tuple[float, dict]] = []
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> QueueWatch:
        self._thread.start()
        return self

    def _run(self):
        from devstack.processes import CONTEXT_QUEUES
        from eventbus.broker import queue_depths

        while not self._stop.is_set():
            depths = queue_depths(list(CONTEXT_QUEUES))
            self.samples.append((time.monotonic(), depths))
            for queue, n in depths.items():
                self.peak[queue] = max(n, self.peak.get(queue, 0))
            self._stop.wait(0.5)

    def at(self, moment: float) -> dict:
        before = [d for t, d in self.samples if t <= moment]
        return before[-1] if before else {}

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)


def step(stack, broker, rate: float, seconds: float) -> dict:
    inbox0, receipts0, decided0 = integrity.inbox_total(), _receipts(), integrity.decided_orders()
    t0 = time.monotonic()
    cpu = resources.CpuMeter(stack).start()
    depths = QueueWatch(broker).start()
    offered = offer(stack.url, rate, seconds)
    t_offered = time.monotonic()
    drain_limit = max(3.0, 0.1 * seconds)
    drained = integrity.drain(broker, timeout=max(60.0, 2 * seconds))
    t_drained = time.monotonic()
    depths.stop()
    cpu.stop()
    lost = integrity.loss()
    deliveries = integrity.inbox_total() - inbox0
    receipts = _receipts() - receipts0
    decided = integrity.decided_orders() - decided0
    window = t_drained - t0
    result = {
        "rate": round(rate, 2), "seconds": seconds, **offered,
        "drain_seconds": round(t_drained - t_offered, 2), "drained": drained,
        "decided_orders": decided, "deliveries": deliveries, "receipts": receipts,
        "deliveries_per_order": round(deliveries / offered["ok"], 2) if offered["ok"] else None,
        "deliveries_per_s": round(deliveries / window, 1),
        "tasks_per_s": round((deliveries + receipts) / window, 1),
        "loss": lost,
        # CPU the stack spent (Daphne included) per delivery and per order: load-independent.
        "cpu_per_delivery": cpu.per(deliveries),
        "cpu_per_order": cpu.per(offered["ok"]),
        # Which queue falls behind: the deepest each queue got, and its depth when offering stopped.
        "queue_depth_max": depths.peak,
        "queue_depth_at_offer_end": depths.at(t_offered),
    }
    reasons = []
    if offered["errors"]:
        reasons.append(f"{offered['errors']} POST errors")
    if offered["achieved_per_s"] is None or offered["achieved_per_s"] < 0.95 * rate:
        reasons.append(f"POSTs achieved {offered['achieved_per_s']}/s of {rate:.2f}/s")
    if not drained or t_drained - t_offered > drain_limit:
        reasons.append(f"backlog drained in {t_drained - t_offered:.1f} s (limit {drain_limit:.0f} s)"
                       if drained else "backlog did not drain")
    if decided < offered["ok"]:
        reasons.append(f"{offered['ok'] - decided} orders undecided")
    if lost["missing"] or lost["dead_letters"]:
        reasons.append(f"{lost['missing']} deliveries missing, {lost['dead_letters']} dead letters")
    result["sustained"] = not reasons
    result["why_not"] = "; ".join(reasons)
    return result


def _receipts() -> int:
    from dashboard.models import LogEntry

    return LogEntry.objects.using("dashboard").filter(kind=LogEntry.RECEIPT).count()


def _start_profile(stack, seconds: float):
    """py-spy on every process but Redis and ourselves for `seconds`."""
    targets = {name: pid for name, pid in resources.process_tree(stack).items()
               if name not in ("redis", "bench driver")}
    running = profiling.start(targets, seconds, stack.logs_dir / "profile")
    return (running, seconds) if running else None


def calibrate(stack, broker, orders: int = 40) -> float:
    """Orders per second the stack drains when given a burst (an upper bound to start under)."""
    integrity.drain(broker, timeout=60)
    t0 = time.monotonic()
    offer(stack.url, rate=1000, seconds=orders / 1000)
    integrity.drain(broker, timeout=120)
    return orders / (time.monotonic() - t0)


def sustained(stack, broker, *, duration: float, baseline: dict | None, say, profile: bool = False) -> dict:
    integrity.drain(broker, timeout=60)
    db_before, orders_before = integrity.db_snapshot(), integrity.confirmed_orders()
    capacity = calibrate(stack, broker)
    say(f"throughput: calibration burst drained at {capacity:.1f} orders/s")
    steps, best, failed_at = [], None, None
    rate = START_FRACTION * capacity
    while len(steps) < MAX_STEPS and (failed_at is None or rate < 0.97 * failed_at):
        say(f"throughput: {rate:.2f} orders/s for {duration:g} s ...")
        result = step(stack, broker, rate, duration)
        steps.append(result)
        say(f"throughput: {rate:.2f} orders/s -> sustained={result['sustained']} {result['why_not']} "
            f"({result['deliveries_per_s']} deliveries/s, drain {result['drain_seconds']} s)")
        if result["sustained"]:
            best = result
            rate *= FACTOR
        elif best is None:
            failed_at = rate
            rate *= START_FRACTION  # not even the first step held: go down
        else:
            break
    db_after, orders_after = integrity.db_snapshot(), integrity.confirmed_orders()
    profiled = None
    if profile:
        # A step of its own: ten py-spy samplers cost CPU that must not decide the figure.
        profiled_rate = best["rate"] if best else steps[-1]["rate"]
        seconds = max(3.0, min(20.0, duration))
        say(f"throughput: profiling {profiled_rate:.2f} orders/s for {seconds:g} s (not counted) ...")
        sampling = _start_profile(stack, seconds)
        profiled = step(stack, broker, profiled_rate, seconds)
        if sampling:
            profiled["profile"] = profiling.finish(*sampling)
    out = {
        "calibration_orders_per_s": round(capacity, 2),
        "orders_per_s": best["achieved_per_s"] if best else None,
        "deliveries_per_s": best["deliveries_per_s"] if best else None,
        "tasks_per_s": best["tasks_per_s"] if best else None,
        "deliveries_per_order": best["deliveries_per_order"] if best else None,
        "cpu_ms_per_delivery": (best.get("cpu_per_delivery") or {}).get("total_ms") if best else None,
        # False when even the last step held: the true ceiling is higher than the figure.
        "ceiling_found": bool(steps) and not steps[-1]["sustained"],
        "steps": steps,
        "profiled_step": profiled,
        "db_growth": {"orders": orders_after - orders_before,
                      "rows": sum(db_after["rows"].values()) - sum(db_before["rows"].values()),
                      "disk_bytes": db_after["disk_bytes"] - db_before["disk_bytes"],
                      "rows_by_table": {k: v - db_before["rows"].get(k, 0) for k, v in db_after["rows"].items()
                                        if v - db_before["rows"].get(k, 0)}},
    }
    if best is None:
        out["not_measured"] = "no step was sustained: " + steps[-1]["why_not"]
    return out
