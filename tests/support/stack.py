"""The real processes a test run needs: Celery workers per queue, the relay sweep, Daphne."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import redis as redis_lib
from django.conf import settings

from devstack.processes import CONTEXT_QUEUES, daphne_argv, sweep_argv, worker_argv
from devstack.redis import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[2]


class Stack:
    """One worker per context queue plus the relay sweep, on the suite's private Redis."""

    def __init__(self, redis: RedisServer, logs_dir: Path):
        self.redis = redis
        self.logs_dir = logs_dir
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self._log_offsets: dict[str, int] = {}

    # --- processes ------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log_path = self.logs_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            self._log_offsets[name] = log.tell()
            proc = subprocess.Popen(
                argv, cwd=ROOT, env=dict(os.environ), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.procs[name] = proc
        return proc

    def log_text(self, name: str, *, since_start: bool = True) -> str:
        path = self.logs_dir / f"{name}.log"
        if not path.exists():
            return ""
        data = path.read_bytes()
        return data[self._log_offsets.get(name, 0) if since_start else 0:].decode(errors="replace")

    def start_worker(self, queue: str, *, timeout: float = 60) -> None:
        """Start the worker of `queue` and return once Celery says it is ready."""
        if self.alive(queue):
            return
        proc = self._spawn(queue, worker_argv(queue, loglevel="INFO"))
        deadline = time.monotonic() + timeout
        while "ready." not in self.log_text(queue):
            if proc.poll() is not None:
                raise RuntimeError(f"worker {queue} exited with {proc.returncode}:\n{self.log_text(queue)[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"worker {queue} not ready in {timeout}s:\n{self.log_text(queue)[-3000:]}")
            time.sleep(0.1)

    def start_sweep(self) -> None:
        if not self.alive("sweep"):
            self._spawn("sweep", sweep_argv())

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def _signal_group(self, name: str, sig: int) -> subprocess.Popen | None:
        proc = self.procs.get(name)
        if proc is None or proc.poll() is not None:
            return None
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        return proc

    def stop_worker(self, name: str, *, timeout: float = 30) -> None:
        """Warm shutdown: the worker finishes the task it runs, then exits."""
        proc = self._signal_group(name, signal.SIGTERM)
        if proc is None:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_worker(name)

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker and its pool children, as a crash would."""
        proc = self._signal_group(name, signal.SIGKILL)
        if proc is not None:
            proc.wait()

    stop_sweep = stop_worker

    def start(self) -> Stack:
        for queue in CONTEXT_QUEUES:
            self.start_worker(queue)
        self.start_sweep()
        return self

    def stop(self) -> None:
        for name in list(self.procs):
            self._signal_group(name, signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill_worker(name)

    # --- quiescence -----------------------------------------------------------
    def broker(self) -> redis_lib.Redis:
        return redis_lib.Redis.from_url(settings.BROKER_URL)

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
        client = self.broker()
        state = {queue: client.llen(queue) for queue in CONTEXT_QUEUES}
        state["unacked"] = client.hlen("unacked")
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
