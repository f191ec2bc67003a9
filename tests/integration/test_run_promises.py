"""What the README promises about stopping `make run` and about a taken PORT, against the real
`python -m devstack.run` in a temp data folder (the run lock is tested in test_run_heals.py)."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import pytest

from tests.support.run_stack import RunStack

# The real `make run`: its own Redis servers, workers and Daphne, whatever the suite runs.
pytestmark = [pytest.mark.live]

STOP_ORDER = [
    "eventflow: stopping orders, inventory, payments, shipping, dashboard",
    "eventflow: stopping daphne",
    "eventflow: stopping sweep",
    "eventflow: stopping Redis",
    "eventflow: stopped",
]


def stop_lines(stack: RunStack, start: int) -> list[str]:
    return [line for line in stack.lines[start:] if line.startswith("eventflow: stop")]


def test_refuses_to_start_when_port_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        stack = RunStack(tmp_path)
        stack.env["PORT"] = str(taken.getsockname()[1])
        try:
            stack.start(wait=False)
            assert stack.wait_exit(60) == 1
        finally:
            stack.close()
    assert f"eventflow: port {stack.env['PORT']} on 127.0.0.1 is not free" in stack.output
    # Refused before anything started: no Redis, no database.
    assert not (stack.data / "redis").exists()
    assert not list(stack.data.glob("*.sqlite3"))


def _stops_in_order(tmp_path, sig: int, **env: str) -> None:
    """Stop order with one worker per queue and one Daphne, or with EVENTFLOW_WORKERS=2
    EVENTFLOW_DAPHNES=2 (named orders-1, orders-2 …, daphne-1, daphne-2), which serve the dashboard."""
    many = env.get("EVENTFLOW_WORKERS") == "2"
    stack = RunStack(tmp_path, **env).start()
    try:
        queues = ("orders", "inventory", "payments", "shipping", "dashboard")
        if many:
            status, contexts = stack.request("/api/contexts/")
            assert status == 200 and {c["name"]: c["consumer"] for c in contexts["contexts"]} == dict.fromkeys(queues, "online")
            assert len([pid for pid in stack.processes() if b"--fd" in Path(f"/proc/{pid}/cmdline").read_bytes()]) == 2
        mark = len(stack.lines)
        workers = [stack.child_pid(f"-Q {queue}") for queue in queues]
        stack.signal(sig)
        assert stack.wait_exit(120) == 0
        assert f"eventflow: {signal.Signals(sig).name} received: stopping" in stack.lines[mark:]
        expected = STOP_ORDER if not many else [
            "eventflow: stopping " + ", ".join(f"{q}-{i}" for q in queues for i in (1, 2)),
            "eventflow: stopping daphne-1, daphne-2", *STOP_ORDER[2:]]
        assert stop_lines(stack, mark) == expected
        # Each worker stopped on its own (a warm shutdown), not killed at the timeout.
        out = "\n".join(stack.lines[mark:])
        assert "did not stop within" not in out, out
        for queue in queues:
            assert any(line.startswith(queue) and "Warm shutdown" in line for line in stack.lines[mark:]), queue
        assert all(not os.path.exists(f"/proc/{pid}") for pid in workers)
        assert stack.processes() == []
        assert not (stack.data / ".run" / "redis-url").exists()
    finally:
        stack.close()


def test_ctrl_c_stops_workers_then_daphne_then_sweep_then_redis(tmp_path):
    _stops_in_order(tmp_path, signal.SIGINT, EVENTFLOW_WORKERS="1", EVENTFLOW_DAPHNES="1")


def test_sigterm_stops_two_workers_per_queue_and_two_daphnes_in_the_same_order(tmp_path):
    _stops_in_order(tmp_path, signal.SIGTERM, EVENTFLOW_WORKERS="2", EVENTFLOW_DAPHNES="2")
