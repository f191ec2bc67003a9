"""`python -m bench [--duration 60] [--only baseline,hop,...]`: see bench/README.md."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from pathlib import Path

from bench.report import format_table, write_results
from bench.stack import BenchStack

PHASES = ("baseline", "hop", "order", "tracing", "throughput", "fanout", "memory")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description="eventflow benchmark against a bare Celery baseline")
    p.add_argument("--duration", type=float, default=60, help="seconds of each sustained-throughput step (default 60)")
    p.add_argument("--samples", type=int, default=200, help="latency samples of the baseline and event hops")
    p.add_argument("--burst", type=int, default=2000, help="tasks in the baseline burst")
    p.add_argument("--orders", type=int, default=40, help="orders timed end to end at a light rate")
    p.add_argument("--clients", default="50,100", help="websocket clients of the fan-out test, one phase per count (default 50,100)")
    p.add_argument("--fanout-step", type=float, default=10, help="seconds of each fan-out rate step")
    p.add_argument("--only", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}")
    p.add_argument("--profile", action="store_true",
                   help="also break one hop down per function (cProfile, in process) and sample every process "
                        "with py-spy during the first throughput step (needs `pip install py-spy`)")
    p.add_argument("--keep", action="store_true", help="keep the temporary data folder and logs")
    p.add_argument("--results", default=None, help="where to write results.json (default bench/results.json)")
    return p.parse_args(argv)


class Interrupted(BaseException):
    pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    phases = [p for p in args.only.split(",") if p]
    unknown = set(phases) - set(PHASES)
    if unknown:
        print(f"bench: unknown phase(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    stack = BenchStack(keep=args.keep)
    interrupts = 0

    def on_signal(signum, frame):
        nonlocal interrupts
        interrupts += 1
        if interrupts > 1:
            print("bench: second signal: killing everything now", flush=True)
            stack.kill()
        raise Interrupted(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    started = time.time()
    results: dict = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                     "args": vars(args), "sections": {},
                     "tracing": say_tracing()}
    code = 0
    try:
        say(f"stack in {stack.tmp} (Redis {stack.redis.public_url}, Daphne {stack.url})")
        stack.start_redis()
        stack.apply_env()
        from bench import runner  # Django is set up from here on

        results["code"] = runner.code_state()
        results["machine"] = {"cpus": os.cpu_count(), "load_1min_at_start": open("/proc/loadavg").read().split()[0]}
        runner.setup(stack)
        results["sections"] = runner.run(stack, args, phases, say)
    except Interrupted as exc:
        say(f"{exc} received: stopping")
        code = 130
    except Exception:
        traceback.print_exc()
        code = 1
    finally:
        try:
            say("stopping the stack")
            stack.stop()
        except Interrupted:
            stack.kill()
        if code == 0:
            stack.cleanup()
        else:
            say(f"logs kept in {stack.logs_dir}")
    if results["sections"]:
        from bench.runner import table_rows

        results["elapsed_s"] = round(time.time() - started, 1)
        results["table"] = table_rows(results["sections"])
        print()
        print(format_table(results["table"]))
        path = write_results(results, Path(args.results)) if args.results else write_results(results)
        say(f"results written to {path} ({results['elapsed_s']} s)")
        say(f"tracing was {'on' if results['tracing'] else 'off'} in this run")
        write_plots_or_say(results, path.parent)
    return code


def say_tracing() -> bool:
    """Whether the stack's processes export OpenTelemetry spans (they inherit this environment)."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    say(f"tracing: on, every process exports spans to {endpoint}" if endpoint else
        "tracing: off (OTEL_EXPORTER_OTLP_ENDPOINT unset: no SDK provider, the OpenTelemetry API's no-op)")
    return bool(endpoint)


def write_plots_or_say(results: dict, out_dir: Path) -> list[Path]:
    from bench.plots import write_plots

    try:
        paths = write_plots(results, out_dir)
    except ImportError as exc:
        say(str(exc))
        return []
    for path in paths:
        say(f"plot written to {path}")
    return paths


def say(message: str) -> None:
    print(f"bench: {message}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
