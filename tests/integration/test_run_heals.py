"""`make run` heals itself (issue 17): a child that dies is started again after a backoff,
a crash loop stops everything, and its private Redis servers keep their credentials and limits.

Every test runs the real `python -m devstack.run` in a temp data folder on a free port.
"""

from __future__ import annotations

import os
import signal
import socket

import pytest
import redis
from websockets.sync.client import connect

from devstack.processes import CONTEXT_QUEUES
from tests.support.run_stack import RunStack
from tests.support.waiting import wait_for

# The real `make run`: its own Redis servers, workers and Daphne, whatever the suite runs.
pytestmark = [pytest.mark.live]

DECIDED = {"CONFIRMED", "REJECTED"}


@pytest.fixture(scope="module")
def run_stack(tmp_path_factory):
    stack = RunStack(tmp_path_factory.mktemp("run-heals")).start()
    yield stack
    stack.close()


def down_names(stack: RunStack) -> str:
    """The part /healthz names as restarting, or "" when it reports nothing restarting."""
    status, body = stack.healthz()
    if status != 503:
        return ""
    return str(body.get("checks", {}).get("restarts", ""))


def test_private_redis_refuses_strangers_and_config(run_stack):
    broker = run_stack.redis()
    port = broker.connection_pool.connection_kwargs["port"]
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=port, socket_timeout=5).ping()
    with pytest.raises(redis.exceptions.ResponseError, match="unknown command"):
        broker.execute_command("CONFIG", "GET", "dir")
    # The file manage.py commands beside the stack read holds the password: only we may read it.
    assert (run_stack.data / ".run" / "redis-url").stat().st_mode & 0o077 == 0


def test_channel_layer_has_its_own_bounded_redis(run_stack):
    broker, channels = run_stack.redis(), run_stack.redis("channels-url")
    assert broker.info("server")["process_id"] != channels.info("server")["process_id"]
    memory = channels.info("memory")
    assert memory["maxmemory"] == 64 * 1024 * 1024
    assert memory["maxmemory_policy"] == "allkeys-lru"
    assert broker.info("memory")["maxmemory_policy"] == "noeviction"
    with pytest.raises(redis.exceptions.AuthenticationError):
        port = channels.connection_pool.connection_kwargs["port"]
        redis.Redis(host="127.0.0.1", port=port, socket_timeout=5).ping()


def test_sigkill_of_redis_is_healed(run_stack):
    """Redis comes back on its port with its data and password; orders around the kill all end."""
    sku = run_stack.in_stock_sku()
    broker = run_stack.redis()
    old_pid = broker.info("server")["process_id"]
    ws_url = f"ws://127.0.0.1:{run_stack.port}/ws/events/"
    with connect(ws_url, origin=f"http://127.0.0.1:{run_stack.port}", open_timeout=30, max_size=None) as ws:
        ws.recv(timeout=30)  # the snapshot
        before = run_stack.place_order(sku)
        mark = len(run_stack.lines)
        os.kill(old_pid, signal.SIGKILL)
        run_stack.wait_line(r"^eventflow: redis exited with -9; restarting in 0\.5 s \(restart 1\)", start=mark)
        # Its consumers start afresh on it (a Celery worker may reconnect without consuming again).
        run_stack.wait_line(rf"^eventflow: restarting {len(CONTEXT_QUEUES)} worker\(s\) and the sweep on the restarted broker",
                            start=mark)
        wait_for(lambda: run_stack.healthz()[0] == 200, timeout=60, interval=0.5, message="/healthz 200 again")
        # The same port and password: the URL manage.py commands read still works.
        assert broker.info("server")["process_id"] != old_pid
        after = run_stack.place_order(sku)

        try:
            statuses = wait_for(
                lambda: (s := run_stack.order_statuses([before, after])) and set(s.values()) <= DECIDED
                and len(s) == 2 and s,
                timeout=120, interval=1, message="both orders decided",
            )
        except pytest.fail.Exception as failed:
            pytest.fail(f"{failed}\nstatuses: {run_stack.order_statuses([before, after])}\n"
                        f"contexts: {run_stack.request('/api/contexts/')}\nthe stack since the kill:\n"
                        + "\n".join(run_stack.lines[mark:][-80:]))
        assert statuses[after] == "CONFIRMED", statuses
        run_stack.wait_audit_clean()

        # The websocket opened before the kill still streams: the order placed after it arrives.
        def saw_after():
            try:
                return after in ws.recv(timeout=1)
            except TimeoutError:
                return False

        wait_for(saw_after, timeout=60, interval=0, message="the open websocket to carry the later order")


def test_sigkill_of_a_worker_is_healed(run_stack):
    old = run_stack.child_pid("-Q inventory")
    mark = len(run_stack.lines)

    os.kill(old, signal.SIGKILL)
    run_stack.wait_line(r"^inventory +\| exited with -9; restarting in 0\.5 s \(restart 1\)", start=mark)
    # While it restarts /healthz says so and names it, and the graph's API shows it offline.
    seen = set()

    def noticed():
        if "inventory" in down_names(run_stack):
            seen.add("healthz")
        status, body = run_stack.request("/api/contexts/")
        if status == 200 and any(c["name"] == "inventory" and c["consumer"] == "offline" for c in body["contexts"]):
            seen.add("offline")
        return seen == {"healthz", "offline"}

    wait_for(noticed, timeout=30, interval=0.1, message="/healthz 503 naming inventory and inventory offline")
    run_stack.wait_line(r"^eventflow: inventory is back", start=mark, timeout=120)

    def inventory_online():
        status, body = run_stack.request("/api/contexts/")
        return status == 200 and any(c["name"] == "inventory" and c["consumer"] == "online" for c in body["contexts"])

    wait_for(inventory_online, timeout=60, interval=0.5, message="inventory online again")
    assert run_stack.child_pid("-Q inventory") != old
    assert run_stack.healthz()[0] == 200
    # Its old pool process went with it: one worker group for inventory, not two.
    assert sum("-Q inventory" in _cmdline(pid) for pid in run_stack.processes()) == 2  # main + 1 pool process


def test_sigkill_of_daphne_is_healed(run_stack):
    old = run_stack.child_pid("daphne")
    mark = len(run_stack.lines)
    os.kill(old, signal.SIGKILL)
    run_stack.wait_line(r"^daphne +\| exited with -9; restarting in 0\.5 s \(restart 1\)", start=mark)
    run_stack.wait_line(r"^eventflow: daphne is back", start=mark, timeout=120)
    wait_for(lambda: run_stack.healthz()[0] == 200, timeout=60, interval=0.5, message="/healthz 200 again")
    assert run_stack.child_pid("daphne") != old


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_second_run_on_the_same_data_is_refused(run_stack):
    second = RunStack(run_stack.data.parent)
    second.env["PORT"] = str(run_stack.port + 1 if run_stack.port < 65535 else run_stack.port - 1)
    second.start(wait=False)
    assert second.wait_exit(60) == 1
    assert f"eventflow is already running (pid {run_stack.proc.pid}, dashboard http://127.0.0.1:{run_stack.port}/)" in second.output
    assert run_stack.proc.poll() is None and run_stack.healthz()[0] == 200


def test_a_crash_loop_stops_everything(tmp_path):
    """Redis that cannot start again (its port taken) trips the limit: named, its log shown, exit 1."""
    stack = RunStack(tmp_path, EVENTFLOW_RESTART_LIMIT="2", EVENTFLOW_RESTART_WINDOW="120").start()
    try:
        broker = stack.redis()
        port = broker.connection_pool.connection_kwargs["port"]
        pid = broker.info("server")["process_id"]
        blocker = socket.socket()
        blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: _bind(blocker, port), timeout=10, interval=0.01, message="the dead Redis's port")
        blocker.listen()
        try:
            assert stack.wait_exit(180) == 1
        finally:
            blocker.close()
        out = stack.output
        assert "eventflow: redis died 3 times within 120 s (EVENTFLOW_RESTART_LIMIT=2" in out
        assert "stopping everything. The last lines of redis:" in out
        assert "Address already in use" in out.split("The last lines of redis:")[1]
        assert stack.processes() == []
    finally:
        stack.close()


def _bind(sock: socket.socket, port: int) -> bool:
    try:
        sock.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False


def test_ctrl_c_during_a_backoff_stops_everything(tmp_path):
    stack = RunStack(tmp_path, EVENTFLOW_RESTART_BACKOFF="600", EVENTFLOW_RESTART_BACKOFF_MAX="600").start()
    try:
        mark = len(stack.lines)
        os.kill(stack.child_pid("relay_sweep"), signal.SIGKILL)
        stack.wait_line(r"^sweep +\| exited with -9; restarting in 600 s \(restart 1\)", start=mark)
        assert "sweep" in down_names(stack)
        stack.signal(signal.SIGINT)
        assert stack.wait_exit(120) == 0
        out = stack.output.split("\n")[mark:]
        assert "eventflow: SIGINT received: stopping" in out
        assert not any("sweep is back" in line for line in out)
        assert stack.processes() == []
        assert not (stack.data / ".run" / "status.json").exists()
    finally:
        stack.close()
