"""Figure 6: peak RSS of every process (VmHWM, pool children included) and what 1,000
orders leave in the databases (rows and bytes, measured over the throughput phase)."""

from __future__ import annotations

import os
from pathlib import Path


def children_of(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return kids


def vm_hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of one process so far (its own, not its children's)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


class CpuMeter:
    """CPU seconds each stack process spends between start() and stop(): unlike wall
    time on a shared machine, it does not grow when other work takes the cores."""

    def __init__(self, stack) -> None:
        self.pids = {n: p for n, p in process_tree(stack).items()}
        self.before: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def start(self) -> CpuMeter:
        self.before = {n: cpu_seconds(p) for n, p in self.pids.items()}
        return self

    def stop(self) -> dict[str, float]:
        for name, pid in self.pids.items():
            now, then = cpu_seconds(pid), self.before.get(name)
            if now is not None and then is not None:
                self.used[name] = now - then
        return self.used

    def per(self, count: int, *, exclude=("bench driver",)) -> dict:
        """Milliseconds of CPU per unit of work, per process and in total."""
        if not count:
            return {}
        by = {n: round(1000 * s / count, 2) for n, s in self.used.items() if n not in exclude and s > 0}
        return {"total_ms": round(sum(by.values()), 2), "by_process_ms": by}


def process_tree(stack) -> dict[str, int]:
    """name -> pid for the stack's processes, a worker's pool child as '<queue> (pool)'."""
    result = {}
    for name, pid in stack.pids().items():
        result[name] = pid
        for n, kid in enumerate(children_of(pid)):
            result[f"{name} (pool)" if n == 0 else f"{name} (child {n})"] = kid
    result["bench driver"] = os.getpid()
    return result


def memory(stack, throughput: dict | None) -> dict:
    peaks = {name: vm_hwm_mb(pid) for name, pid in process_tree(stack).items()}
    out = {"peak_rss_mb": {k: v for k, v in peaks.items() if v is not None}}
    growth = (throughput or {}).get("db_growth")
    if growth and growth.get("orders"):
        per = 1000 / growth["orders"]
        out["per_1000_orders"] = {
            "orders_measured": growth["orders"],
            "rows": round(growth["rows"] * per),
            "disk_mb": round(growth["disk_bytes"] * per / 2**20, 2),
            "rows_by_table": {k: round(v * per) for k, v in sorted(growth["rows_by_table"].items())},
        }
    else:
        out["per_1000_orders"] = {"not_measured": "needs the throughput phase (it counts what its orders left)"}
    return out
