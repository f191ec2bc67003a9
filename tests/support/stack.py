"""The real processes a test run needs: devstack's workers per queue and relay sweep, Daphne."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import redis as redis_lib
from django.conf import settings

from devstack.processes import CONTEXT_QUEUES, Supervisor, daphne_argv
from devstack.redis import RedisServer, free_port
from devstack.stack import Stack as ProcessStack

ROOT = Path(__file__).resolve().parents[2]


class Stack:
    """devstack's Stack (EVENTFLOW_WORKERS workers per context queue, the relay sweep) on the
    suite's private Redis, each process's output in <logs_dir>/<name>.log."""

    def __init__(self, redis: RedisServer, logs_dir: Path):
        self.redis = redis
        self.logs_dir = logs_dir
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._out = open(self.logs_dir / "supervisor.log", "a", buffering=1)
        self.supervisor = Supervisor(out=self._out, colour=False, logs_dir=logs_dir)
        self.processes = ProcessStack(self.supervisor, loglevel="INFO")
        self._log_offsets: dict[str, int] = {}

    def _names(self, name: str) -> list[str]:
        """A queue stands for all its workers; any other name for itself."""
        return self.processes.worker_names(name) if name in CONTEXT_QUEUES else [name]

    def _mark(self, names) -> None:
        for name in names:
            path = self.logs_dir / f"{name}.log"
            self._log_offsets[name] = path.stat().st_size if path.exists() else 0

    def log_text(self, name: str, *, since_start: bool = True) -> str:
        text = ""
        for one in self._names(name):
            path = self.logs_dir / f"{one}.log"
            if path.exists():
                text += path.read_bytes()[self._log_offsets.get(one, 0) if since_start else 0:].decode(errors="replace")
        return text

    def start_worker(self, queue: str, *, timeout: float = 60) -> None:
        """Start the workers of `queue` and return once Celery says each is ready."""
        names = [name for name in self.processes.worker_names(queue) if not self.supervisor.alive(name)]
        if not names:
            return
        self._mark(names)
        self.supervisor.env = dict(os.environ)  # what the test set, as a fresh spawn would see
        self.processes.start_workers(queue)
        late = self.supervisor.wait_ready(*names, timeout=timeout)
        if late:
            raise RuntimeError(f"workers {late} not ready in {timeout}s:\n{self.log_text(queue)[-3000:]}")

    def start_sweep(self) -> None:
        self._mark(["sweep"])
        self.supervisor.env = dict(os.environ)
        self.processes.start_sweep()

    def alive(self, name: str) -> bool:
        return any(self.supervisor.alive(one) for one in self._names(name))

    def stop_worker(self, name: str, *, timeout: float = 30) -> None:
        """Warm shutdown: each worker finishes the task it runs, then exits."""
        self.supervisor.stop(*[one for one in self._names(name) if one in self.supervisor.children], timeout=timeout)

    def kill_worker(self, name: str) -> None:
        """SIGKILL the workers and their pool children, as a crash would."""
        self.supervisor.stop(*[one for one in self._names(name) if one in self.supervisor.children], force=True)

    stop_sweep = stop_worker

    def start(self) -> Stack:
        for queue in CONTEXT_QUEUES:
            self.start_worker(queue)
        self.start_sweep()
        return self

    def stop(self) -> None:
        self.processes.stop(timeout=20)
        self._out.close()

    # --- quiescence -----------------------------------------------------------
    def broker(self) -> redis_lib.Redis:
        return redis_lib.Redis.from_url(settings.BROKER_URL)

    def queue_depth(self, queue: str) -> int:
        from eventbus.broker import queue_depths

        return queue_depths([queue])[queue]

    def queued(self, queue: str) -> set[bytes]:
        """The messages waiting in `queue`, to tell them from later ones: Redis lists them;
        RabbitMQ cannot without taking them, so there it is empty."""
        return set() if settings.BROKER_IS_AMQP else set(self.broker().lrange(queue, 0, -1))

    def lose_broker_data(self) -> None:
        """The broker comes back without its data: Redis killed, wiped and started again;
        RabbitMQ's virtual host deleted and created again (every queue and message gone)."""
        from tests import bootstrap

        if settings.BROKER_IS_AMQP:
            vhost = bootstrap.vhost()
            vhost.delete()
            vhost.create()
            return
        self.redis.kill()
        self.redis.wipe()
        time.sleep(1)
        self.redis.start()

    def unsent_outbox_rows(self) -> int:
        from eventbus.models import OutboxMessage

        return sum(
            OutboxMessage.objects.using(alias).filter(sent_at__isnull=True).count()
            for alias in settings.DATABASES if alias != "default"
        )

    def unconfirmed_outbox_rows(self) -> int:
        """Sent rows some subscriber has not recorded yet (the sweep confirms or resends them);
        rows parked behind dead letters wait for an operator, not for the stack."""
        from eventbus.models import OutboxMessage

        return sum(
            OutboxMessage.objects.using(alias).filter(sent_at__isnull=False, confirmed_at__isnull=True,
                                                      parked_at__isnull=True).count()
            for alias in settings.DATABASES if alias != "default"
        )

    def busy(self) -> dict:
        from eventbus.broker import queue_depths

        state = queue_depths(list(CONTEXT_QUEUES))
        if not settings.BROKER_IS_AMQP:  # RabbitMQ holds what a worker took out of the ready count
            state["unacked"] = self.broker().hlen("unacked")  # (the unconfirmed rows cover it)
        state["unsent"] = self.unsent_outbox_rows()
        state["unconfirmed"] = self.unconfirmed_outbox_rows()
        return {k: v for k, v in state.items() if v}

    def wait_idle(self, timeout: float = 30) -> None:
        """Return once nothing is unsent, queued, in flight or unconfirmed, twice in a row."""
        deadline = time.monotonic() + timeout
        calm = 0
        while calm < 2:
            state = self.busy()
            calm = calm + 1 if not state else 0
            if time.monotonic() > deadline:
                raise AssertionError(f"the stack did not go idle in {timeout}s: {state}")
            time.sleep(0.2)


class Daphne:
    """A real Daphne serving config.asgi on a free port."""

    def __init__(self, logs_dir: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = logs_dir / "daphne.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> Daphne:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                daphne_argv(self.port), cwd=ROOT, env=dict(os.environ), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/healthz", timeout=2)
                return self
            except urllib.error.HTTPError:
                return self  # it answers; health is for the tests to judge
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"daphne did not start:\n{self.log_path.read_text()[-3000:]}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
