"""`python -m bench` runs end to end with tiny durations and reports every section.

Not a speed test: it checks the shape of results.json, never a figure's value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = {"baseline", "event_hop", "order_e2e", "tracing", "throughput", "fanout", "memory"}

pytestmark = [pytest.mark.live, pytest.mark.timeout(600)]


def test_bench_runs_every_section_and_stops_everything(tmp_path):
    results = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--duration", "2", "--samples", "10", "--burst", "100",
         "--orders", "3", "--clients", "5", "--fanout-step", "1", "--results", str(results)],
        cwd=ROOT, env=dict(os.environ), capture_output=True, text=True, timeout=540,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    data = json.loads(results.read_text())
    assert SECTIONS <= set(data["sections"]), sorted(data["sections"])
    for name in SECTIONS:
        assert "error" not in data["sections"][name], (name, data["sections"][name]["error"])
    figures = {row["figure"].split(" ")[0] for row in data["table"]}
    assert {"1", "2", "3", "4", "5", "6", "7"} <= figures
    assert "figure" in run.stdout and "baseline" in run.stdout  # the table was printed
