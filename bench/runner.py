"""Sets Django up against the bench stack, runs the chosen phases, builds the table rows."""

from __future__ import annotations

import time
import traceback

import django

from bench.products import BENCH_SKUS
from bench.report import row
from bench.stats import ratio


def code_state() -> dict:
    """Which code was measured: the tree is shared and moves, so say exactly what ran."""
    import subprocess

    from devstack.processes import REPO_ROOT

    def git(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    dirty = [line[3:] for line in git("status", "--porcelain").splitlines() if not line[3:].startswith("bench/")]
    return {"commit": git("rev-parse", "HEAD").strip(), "uncommitted_files_outside_bench": dirty}


def setup(stack) -> None:
    django.setup()
    stack.migrate()
    from inventory.models import Product
    from inventory.services import product_create

    # Plenty of stock: the throughput test must measure the bus, not run out of mugs.
    for sku in BENCH_SKUS:
        if not Product.objects.using("inventory").filter(sku=sku).exists():
            product_create(sku=sku, name=f"Bench item {sku}", price="9.99", on_hand=10**9)
    stack.start_processes()
    from orders.models import ProductView

    deadline = time.monotonic() + 60
    while ProductView.objects.using("orders").filter(sku__in=BENCH_SKUS).count() < len(BENCH_SKUS):
        if time.monotonic() > deadline:
            raise RuntimeError("orders' product view never received the bench products")
        time.sleep(0.1)


def broker():
    import redis
    from django.conf import settings

    return redis.Redis.from_url(settings.BROKER_URL)


def run(stack, args, phases, say) -> dict:
    from bench import latency

    sections: dict = {}
    b = broker()

    def phase(name, fn):
        say(f"{name} ...")
        t0 = time.monotonic()
        load_before = _loadavg()
        try:
            sections[name] = fn()
        except Exception as exc:
            traceback.print_exc()
            sections[name] = {"error": f"{type(exc).__name__}: {exc}"}
        sections[name]["phase_seconds"] = round(time.monotonic() - t0, 1)
        # The machine is shared: the 1-minute load average before and after says how much.
        sections[name]["machine_load_1min"] = [load_before, _loadavg()]
        say(f"{name}: {summary_line(sections[name])}")

    if "baseline" in phases:
        phase("baseline", lambda: {"hop": latency.baseline_latency(b, samples=args.samples),
                                   "burst": latency.baseline_burst(b, tasks=args.burst, stack=stack)})
    if "hop" in phases:
        phase("event_hop", lambda: latency.event_hop(b, samples=args.samples))
    if "order" in phases:
        from bench import orders

        phase("order_e2e", lambda: orders.order_e2e(stack, b, samples=args.orders))
    if "tracing" in phases:
        from bench.tracing_cost import tracing_cost

        phase("tracing", tracing_cost)
    if "throughput" in phases:
        from bench import throughput

        phase("throughput", lambda: throughput.sustained(stack, b, duration=args.duration,
                                                         baseline=sections.get("baseline"), say=say,
                                                         profile=getattr(args, "profile", False)))
    if "fanout" in phases:
        from bench import fanout

        for n, clients in enumerate(_client_counts(args.clients)):
            phase("fanout" if n == 0 else f"fanout_{clients}",
                  lambda clients=clients, n=n: fanout.fanout(stack, b, clients=clients, step_seconds=args.fanout_step,
                                                             say=say, profile=getattr(args, "profile", False) and n == 0))
    if getattr(args, "profile", False):
        from bench import costs

        phase("costs", lambda: costs.breakdown())
    if "memory" in phases:
        from bench import resources

        phase("memory", lambda: resources.memory(stack, sections.get("throughput")))
    return sections


def _client_counts(value) -> list[int]:
    """--clients "50,100" -> [50, 100] (one fan-out phase each)."""
    return [int(part) for part in str(value).split(",") if part.strip()]


def _loadavg() -> float | None:
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except OSError:
        return None


def summary_line(section: dict) -> str:
    text = str({k: v for k, v in section.items() if not isinstance(v, (list,))})
    return text if len(text) < 400 else text[:400] + "..."


def _get(d, *path):
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def table_rows(s: dict) -> list[dict]:
    rows = []
    base_p50 = _get(s, "baseline", "hop", "p50_ms")
    base_p99 = _get(s, "baseline", "hop", "p99_ms")
    base_tps = _get(s, "baseline", "burst", "tasks_per_s")
    if "baseline" in s:
        err = _get(s, "baseline", "error")
        rows += [
            row("1 baseline hop p50", base_p50, "ms", note=err or ""),
            row("1 baseline hop p99", base_p99, "ms", note=err or ""),
            row("1 baseline tasks/s", base_tps, "tasks/s", note=err or ""),
        ]
    if "event_hop" in s:
        hop = s["event_hop"]
        p50, p99 = hop.get("p50_ms"), hop.get("p99_ms")
        r50, r99 = ratio(p50, base_p50), ratio(p99, base_p99)
        rows += [
            row("2 event hop p50", p50, "ms", baseline=base_p50, ratio=r50, target="<= 1.5x",
                met=None if r50 is None else r50 <= 1.5, note=hop.get("error", "")),
            row("2 event hop p99", p99, "ms", baseline=base_p99, ratio=r99, target="<= 1.5x",
                met=None if r99 is None else r99 <= 1.5, note=hop.get("error", "")),
        ]
    if "order_e2e" in s:
        o = s["order_e2e"]
        hops = o.get("critical_path_hops")
        note = o.get("error") or o.get("not_measured", "")
        for pct, base in (("p50", base_p50), ("p99", base_p99)):
            value = o.get(f"{pct}_ms")
            expected = hops * base if hops and base else None
            r = ratio(value, expected)
            rows.append(row(f"3 order end to end {pct}", value, "ms", baseline=expected, ratio=r,
                            target="<= 1.5x hops x hop", met=None if r is None else r <= 1.5, note=note))
        rows.append(row("3 hops on the critical path", hops, note=note))
    if "tracing" in s:
        t = s["tracing"]
        note = t.get("error") or t.get("not_measured", "")
        off = t.get("cpu_ms_per_hop_off")
        rows += [
            row("7 tracing off: CPU-ms per hop's code (publish + deliver)", off, "ms", note=note),
            row("7 tracing off: its 4 hooks per hop", t.get("off_hook_us_per_hop"), "us",
                ratio=t.get("off_hooks_share_of_hop"), target="nothing measurable", note=note),
            row("7 tracing on (SDK, spans dropped): CPU-ms per hop", t.get("cpu_ms_per_hop_on"), "ms", baseline=off,
                ratio=t.get("on_over_off"), note=note),
        ]
    if "throughput" in s:
        t = s["throughput"]
        note = t.get("error") or t.get("not_measured", "")
        dps = t.get("deliveries_per_s")
        r = ratio(dps, base_tps)
        cpu = t.get("cpu_ms_per_delivery")
        base_cpu = _get(s, "baseline", "burst", "cpu_per_task", "total_ms")
        rows += [
            row("4 sustained orders/s (0 loss)", t.get("orders_per_s"), "orders/s", note=note),
            row("4 sustained deliveries/s", dps, "deliv/s", baseline=base_tps, ratio=r, target=">= 0.8x",
                met=None if r is None else r >= 0.8, note=note),
            row("4 CPU-ms per delivery (stack) vs per baseline task", cpu, "ms", baseline=base_cpu,
                ratio=ratio(cpu, base_cpu), note=note),
            row("4 deliveries + receipts logged/s", t.get("tasks_per_s"), "/s", note=note),
        ]
    for key in [k for k in s if k == "fanout" or k.startswith("fanout_")]:
        f = s[key]
        v = f.get("events_per_s")
        rows.append(row(f"5 fan-out to {f.get('clients', '?')} sockets, lag < 1 s", v, "events/s", target=">= 500",
                        met=False if v is None and "error" not in f else (None if v is None else v >= 500),
                        note=f.get("error", "")))
        kept = f.get("events_per_s_ignoring_dropped_sockets")
        rows.append(row("5 same, forgiving sockets the server dropped", kept, "events/s", target=">= 500",
                        met=None if kept is None else kept >= 500, note=f.get("error", "")))
    if "memory" in s:
        m = s["memory"]
        peaks = m.get("peak_rss_mb") or {}
        for name, mb in peaks.items():
            rows.append(row(f"6 peak RSS {name}", mb, "MB"))
        stack_peaks = [mb for name, mb in peaks.items() if name != "bench driver"]
        if stack_peaks:
            rows.append(row("6 peak RSS summed (the stack, pool children counted whole)", round(sum(stack_peaks)), "MB"))
        per = m.get("per_1000_orders") or {}
        note = m.get("error") or per.get("not_measured", "")
        rows.append(row("6 database rows / 1000 orders", per.get("rows"), note=note))
        rows.append(row("6 disk / 1000 orders", per.get("disk_mb"), "MB", note=note))
    return rows
