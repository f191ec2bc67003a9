"""What the README promises about stopping `make run` and about a taken PORT, against the real
`python -m devstack.run` in a temp data folder (the run lock is tested in test_run_heals.py)."""

from __future__ import annotations

import os
import signal
import socket

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


def _stops_in_order(tmp_path, sig: int) -> None:
    stack = RunStack(tmp_path).start()
    try:
        mark = len(stack.lines)
        workers = [stack.child_pid(f"-Q {queue}") for queue in ("orders", "inventory", "payments", "shipping", "dashboard")]
        stack.signal(sig)
        assert stack.wait_exit(120) == 0
        assert f"eventflow: {signal.Signals(sig).name} received: stopping" in stack.lines[mark:]
        assert stop_lines(stack, mark) == STOP_ORDER
        # Each worker stopped on its own (a warm shutdown), not killed at the timeout.
        out = "\n".join(stack.lines[mark:])
        assert "did not stop within" not in out, out
        for queue in ("orders", "inventory", "payments", "shipping", "dashboard"):
            assert any(line.startswith(queue) and "Warm shutdown" in line for line in stack.lines[mark:]), queue
        assert all(not os.path.exists(f"/proc/{pid}") for pid in workers)
        assert stack.processes() == []
        assert not (stack.data / ".run" / "redis-url").exists()
    finally:
        stack.close()


def test_ctrl_c_stops_workers_then_daphne_then_sweep_then_redis(tmp_path):
    _stops_in_order(tmp_path, signal.SIGINT)


def test_sigterm_stops_in_the_same_order(tmp_path):
    _stops_in_order(tmp_path, signal.SIGTERM)


def test_second_ctrl_c_kills_what_is_left(tmp_path):
    """Daphne frozen (SIGSTOP) would hold the graceful stop until its 10 s timeout; a second
    Ctrl-C kills it and everything else at once."""
    stack = RunStack(tmp_path).start()
    try:
        daphne = stack.child_pid("daphne")
        os.kill(daphne, signal.SIGSTOP)
        mark = len(stack.lines)
        stack.signal(signal.SIGINT)
        stack.wait_line("eventflow: stopping daphne", start=mark)
        stack.signal(signal.SIGINT)
        assert stack.wait_exit(120) == 0
        out = stack.lines[mark:]
        assert "eventflow: second signal: killing everything now" in out
        # Without the second signal the stop would have waited out the timeout and said so.
        assert not any("did not stop within" in line for line in out)
        assert "eventflow: stopped" in out
        assert stack.processes() == []
    finally:
        stack.close()
