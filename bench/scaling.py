"""The scaling figure: sustained deliveries/s with 1 and 2 worker processes per context, on Redis
and on RabbitMQ, each beside the bare-Celery baseline on the same broker.

Each configuration is a bench run of its own (`python -m bench --only baseline,throughput` in a
subprocess, with EVENTFLOW_WORKERS and CELERY_BROKER_URL set): a fresh stack, its own data
folder and broker (RabbitMQ: a private virtual host). RabbitMQ is measured only when
`rabbitmqctl` answers. `python -m bench.scaling` runs the figure alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from devstack.processes import REPO_ROOT

AMQP_URL = os.environ.get("EVENTFLOW_BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def rabbitmq_available() -> bool:
    if not shutil.which("rabbitmqctl"):
        return False
    return subprocess.run(["rabbitmqctl", "-q", "status"], capture_output=True, timeout=60).returncode == 0


def configurations() -> list[dict]:
    brokers = [("redis", "")] + ([("rabbitmq", AMQP_URL)] if rabbitmq_available() else [])
    return [{"broker": name, "url": url, "workers": workers} for name, url in brokers for workers in (1, 2)]


def run_one(config: dict, *, duration: float, burst: int, say) -> dict:
    out = Path(tempfile.mkdtemp(prefix="eventflow-scaling-")) / "results.json"
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_URL"}
    env.update(EVENTFLOW_WORKERS=str(config["workers"]), EVENTFLOW_CONCURRENCY="1")
    if config["url"]:
        env["CELERY_BROKER_URL"] = config["url"]
    label = f"{config['broker']}, {config['workers']} worker(s) per context"
    say(f"scaling: {label} ...")
    done = subprocess.run([sys.executable, "-m", "bench", "--only", "baseline,throughput", "--duration", str(duration),
                           "--burst", str(burst), "--samples", "20", "--results", str(out)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    if done.returncode or not out.exists():
        return {**config, "error": (done.stdout + done.stderr)[-800:]}
    sections = json.loads(out.read_text())["sections"]
    shutil.rmtree(out.parent, ignore_errors=True)
    throughput, baseline = sections.get("throughput", {}), sections.get("baseline", {})
    result = {
        "broker": config["broker"], "workers": config["workers"],
        "deliveries_per_s": throughput.get("deliveries_per_s"),
        "orders_per_s": throughput.get("orders_per_s"),
        "ceiling_found": throughput.get("ceiling_found"),
        "cpu_ms_per_delivery": throughput.get("cpu_ms_per_delivery"),
        "bare_celery_tasks_per_s": (baseline.get("burst") or {}).get("tasks_per_s"),
        "machine_load_1min": throughput.get("machine_load_1min"),
    }
    say(f"scaling: {label}: {result['deliveries_per_s']} deliveries/s "
        f"(bare Celery {result['bare_celery_tasks_per_s']} tasks/s)")
    return result


def figure(*, duration: float, burst: int, say) -> dict:
    runs = [run_one(config, duration=duration, burst=burst, say=say) for config in configurations()]
    return {"runs": runs, "cpus": os.cpu_count(),
            "rabbitmq": any(run["broker"] == "rabbitmq" for run in runs)}


def table_rows(section: dict) -> list[dict]:
    from bench.report import row

    return [row(f"7 scaling: {run['broker']}, {run['workers']} worker(s) per context, sustained",
                run.get("deliveries_per_s"), "deliveries/s", baseline=run.get("bare_celery_tasks_per_s"),
                note=run.get("error", "")[:80] or f"{run.get('cpu_ms_per_delivery')} CPU-ms per delivery; "
                                                   "baseline: bare Celery tasks/s on that broker")
            for run in section.get("runs", [])]


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.scaling")
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--results", default=str(REPO_ROOT / "bench" / "scaling.json"))
    args = parser.parse_args()
    section = figure(duration=args.duration, burst=args.burst, say=lambda line: print(f"bench: {line}", flush=True))
    Path(args.results).write_text(json.dumps(section, indent=2) + "\n")
    from bench.report import format_table

    print(format_table(table_rows(section)))
    sys.exit(0 if all("error" not in run for run in section["runs"]) else 1)
