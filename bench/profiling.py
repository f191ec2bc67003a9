"""Optional profiling (`--profile`): py-spy samples each process during a throughput step,
then the collapsed stacks are summarised per function (inclusive and self time).

py-spy is not a dependency: `pip install py-spy` into the venv to use it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

RATE = 100  # samples a second
SCAFFOLDING = ("(click/", "(celery/bin/", "(celery/__main__", "(billiard/process", "(billiard/popen", "(billiard/pool",
               "(billiard/context", "(celery/bootsteps", "(celery/worker/worker", "(celery/concurrency/",
               "<frozen runpy>", "(threading.py)", "(concurrent/futures/thread", "(daphne/cli", "(daphne/server",
               "(daphne/__main__", "(twisted/internet/asyncioreactor", "(asyncio/base_events", "(asyncio/events",
               "(asyncio/runners", "(celery/app/trace.py)", "(celery/worker/loops")
_LINE = re.compile(r"\s*\(([^()]*):\d+\)$")


def py_spy() -> str | None:
    import sys

    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def start(targets: dict[str, int], seconds: float, out_dir: Path) -> list[tuple[str, Path, subprocess.Popen]]:
    """Start one `py-spy record` per process (name -> pid); they stop on their own after `seconds`."""
    binary = py_spy()
    if binary is None:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    running = []
    for name, pid in targets.items():
        path = out_dir / f"{name}.collapsed.txt"
        proc = subprocess.Popen(
            [binary, "record", "-p", str(pid), "-d", str(int(seconds)), "-r", str(RATE), "--format", "raw",
             "--nonblocking", "-o", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        running.append((name, path, proc))
    return running


def finish(running, seconds: float, top: int = 15) -> dict:
    result = {}
    for name, path, proc in running:
        try:
            proc.wait(seconds + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if path.exists():
            result[name] = summarise(path, seconds=seconds, top=top)
    return result


def _function(frame: str) -> str:
    # "deliver (eventbus/tasks.py:17)" -> "deliver (eventbus/tasks.py)"; site-packages shortened.
    frame = _LINE.sub(lambda m: f" ({m.group(1)})", frame.strip())
    return re.sub(r"\(/.*?site-packages/", "(", re.sub(r"\(/work/main/", "(", frame))


def summarise(path: Path, *, seconds: float, top: int = 15) -> dict:
    inclusive: Counter = Counter()
    own: Counter = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_function(f) for f in stack.split(";") if f]
        for fn in set(frames):
            inclusive[fn] += n
        if frames:
            own[frames[-1]] += n
    busy = total / (RATE * seconds) if seconds else None

    def ms_per_s(n):  # CPU-ish milliseconds per wall second spent in the function
        return round(n * 1000 / RATE / seconds, 1)

    # The process's scaffolding (main loops, the pool, the CLI) is on every stack: not a cost.
    costs = [(fn, n) for fn, n in inclusive.most_common()
             if n < 0.95 * total and not any(part in fn for part in SCAFFOLDING)]
    return {
        "busy_fraction": round(busy, 3) if busy is not None else None,
        "samples": total,
        "inclusive_ms_per_s": [[fn, ms_per_s(n)] for fn, n in costs[: top * 2]],
        "self_ms_per_s": [[fn, ms_per_s(n)] for fn, n in own.most_common(top)],
    }
