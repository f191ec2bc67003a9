"""The bench's own stack: a private Redis, a fresh data folder and devstack's Stack (Daphne,
the workers of each queue, the relay sweep), the same processes as `make run`.

Everything runs in its own process group and dies with us (devstack._children);
stop() takes it all down: workers first, then Daphne and the sweep, Redis last.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from devstack import rabbitmq
from devstack.processes import REPO_ROOT, Supervisor
from devstack.redis import HOST, RedisServer, free_port
from devstack.stack import Stack


class BenchStack:
    def __init__(self, *, keep: bool = False, workers: int | None = None, concurrency: int | None = None) -> None:
        self.tmp = Path(tempfile.mkdtemp(prefix="eventflow-bench-"))
        self.keep = keep
        self.data_dir = self.tmp / "data"
        self.logs_dir = self.tmp / "logs"
        self.logs_dir.mkdir(parents=True)
        self.redis = RedisServer(self.tmp / "redis", logfile=self.logs_dir / "redis.log")
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        # The bench measures the embedded run (SQLite files in its own folder): never a
        # DATABASE_URL or REDIS_URL the caller happens to have set.
        inherited = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.env = {
            **inherited,
            "EVENTFLOW_DATA_DIR": str(self.data_dir),
            "REDIS_URL": self.redis.url,
            "EVENTFLOW_EXTRA_APPS": "bench",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            # DEBUG would keep every SQL query in memory: not what a deployment runs.
            "DJANGO_DEBUG": "0",
            "EVENTFLOW_LOG_LEVEL": "WARNING",
            # The bench offers hundreds of orders a second from one address: no rate limit.
            "EVENTFLOW_ORDER_RATE_LIMIT": "0",
        }
        # On RabbitMQ (CELERY_BROKER_URL=amqp://…): a virtual host of its own, deleted at the end.
        self.vhost = rabbitmq.private_vhost(os.environ.get("CELERY_BROKER_URL", ""), prefix="eventflow-bench")
        if self.vhost:
            self.env["CELERY_BROKER_URL"] = self.vhost.url
        self._log = open(self.logs_dir / "processes.log", "a", buffering=1)
        self.supervisor = Supervisor(env=self.env, out=self._log, colour=False)
        self.stack = Stack(self.supervisor, port=self.port, host=HOST, workers=workers, concurrency=concurrency,
                           daphnes=1)

    def apply_env(self) -> None:
        """Point this process (the driver) at the stack, before Django is set up."""
        os.environ.pop("DATABASE_URL", None)
        os.environ.update({k: self.env[k] for k in (
            "EVENTFLOW_DATA_DIR", "REDIS_URL", "EVENTFLOW_EXTRA_APPS", "DJANGO_SETTINGS_MODULE",
            "DJANGO_DEBUG", "EVENTFLOW_LOG_LEVEL")})
        if self.vhost:
            os.environ["CELERY_BROKER_URL"] = self.vhost.url

    def start_redis(self) -> None:
        self.redis.start()

    def migrate(self) -> None:
        subprocess.run([sys.executable, "manage.py", "migrate_all", "--verbosity", "0"],
                       cwd=REPO_ROOT, env=self.env, check=True)

    def start_processes(self, timeout: float = 60) -> None:
        try:
            late = self.stack.start(timeout=timeout)
        except RuntimeError as error:
            raise RuntimeError(f"{error} (log {self._log.name})") from None
        if late:
            raise RuntimeError(f"workers not ready in {timeout}s: {late} (log {self._log.name})")

    def pids(self) -> dict[str, int]:
        result = {name: child.pid for name, child in self.supervisor.children.items() if child.process.poll() is None}
        if self.redis.pid:
            result["redis"] = self.redis.pid
        return result

    def stop(self) -> None:
        self.stack.stop(timeout=15)
        self.redis.stop()
        if self.vhost:
            self.vhost.delete()
        self._log.close()

    def kill(self) -> None:
        """Second Ctrl-C: take every group down at once."""
        self.stack.kill()
        self.redis.kill()

    def cleanup(self) -> None:
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
