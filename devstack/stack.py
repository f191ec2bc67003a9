"""One stack of eventflow's processes, the same for `make run`, the tests and the bench:
Daphne (one, or several on one listening socket), EVENTFLOW_WORKERS Celery workers per
context queue with EVENTFLOW_CONCURRENCY pool processes each, and the relay sweep.

    stack = Stack(Supervisor(...), port=8000)
    stack.start()          # workers ready, Daphne listening
    ...                    # the caller watches (devstack.run heals what dies)
    stack.stop()           # workers first (each finishes its task), then Daphne, the sweep

Redis, the databases and the watching stay with the caller: `make run` starts private Redis
servers and heals, the tests use the suite's Redis, the bench its own.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable

from devstack.processes import (
    CONTEXT_QUEUES, Supervisor, daphne_argv, sweep_argv, worker_argv, worker_concurrency, worker_names,
    workers_per_queue,
)

READY_TEXT = " ready."  # what a Celery worker prints once it consumes


def daphnes_per_port() -> int:
    """EVENTFLOW_DAPHNES: Daphne processes serving the one port (default 1)."""
    return max(1, int(os.environ.get("EVENTFLOW_DAPHNES", "1")))


class Stack:
    def __init__(self, supervisor: Supervisor, *, port: int | None = None, host: str = "127.0.0.1",
                 workers: int | None = None, concurrency: int | None = None, daphnes: int | None = None,
                 sweep: bool = True, loglevel: str = "INFO") -> None:
        self.supervisor, self.port, self.host = supervisor, port, host
        self.workers = workers or workers_per_queue()
        self.concurrency = concurrency or worker_concurrency()
        self.daphnes = daphnes or daphnes_per_port()
        self.sweep, self.loglevel = sweep, loglevel
        self.listener: socket.socket | None = None

    # --- names ------------------------------------------------------------------
    def worker_names(self, *queues: str) -> list[str]:
        return [name for queue in (queues or CONTEXT_QUEUES) for name in worker_names(queue, self.workers)]

    def daphne_names(self) -> list[str]:
        return ["daphne"] if self.daphnes == 1 else [f"daphne-{i}" for i in range(1, self.daphnes + 1)]

    # --- start --------------------------------------------------------------------
    def start_workers(self, *queues: str) -> list[str]:
        """Start the workers of `queues` (all) that are not running; their names."""
        names = []
        for queue in queues or CONTEXT_QUEUES:
            for index, name in enumerate(worker_names(queue, self.workers), start=1):
                if not self.supervisor.alive(name):
                    self.supervisor.start(name, worker_argv(queue, index=index, concurrency=self.concurrency,
                                                            loglevel=self.loglevel), ready_text=READY_TEXT)
                names.append(name)
        return names

    def start_daphnes(self) -> None:
        """One Daphne on host:port, or several accepting on one socket bound here (--fd)."""
        if self.daphnes == 1:
            self.supervisor.start("daphne", daphne_argv(self.port, self.host))
            return
        if self.listener is None:
            family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
            self.listener = socket.socket(family, socket.SOCK_STREAM)
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind((self.host, self.port))
            self.listener.listen(1024)
            self.listener.set_inheritable(True)
        fd = self.listener.fileno()
        for name in self.daphne_names():
            self.supervisor.start(name, daphne_argv(self.port, self.host, fd=fd), pass_fds=(fd,))

    def start_sweep(self) -> None:
        if self.sweep and not self.supervisor.alive("sweep"):
            self.supervisor.start("sweep", sweep_argv())

    def start(self, *, timeout: float = 60, cancel: Callable[[], bool] = lambda: False) -> list[str]:
        """Everything; returns once the workers are ready and Daphne listens (raises if Daphne
        exits or does not listen in time). Returns the workers not ready within `timeout`."""
        if self.port is not None:
            self.start_daphnes()
        names = self.start_workers()
        self.start_sweep()
        if self.port is not None:
            self.wait_listening(timeout=timeout, cancel=cancel)
        return self.supervisor.wait_ready(*names, timeout=timeout, cancel=cancel)

    def wait_listening(self, *, timeout: float = 30, cancel: Callable[[], bool] = lambda: False) -> None:
        deadline = time.monotonic() + timeout
        while not cancel():
            if not any(self.supervisor.alive(name) for name in self.daphne_names()):
                raise RuntimeError("daphne exited while starting, see its output")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"daphne did not listen on port {self.port} within {timeout:g}s") from None
                time.sleep(0.1)

    def listening(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    # --- stop ----------------------------------------------------------------------
    def stop_groups(self) -> list[list[str]]:
        """The order of a stop: workers (they may be finishing a task), Daphne, the sweep."""
        return [self.worker_names(), self.daphne_names(), ["sweep"]]

    def stop(self, *, timeout: float = 10, say: Callable[[str], None] = lambda line: None) -> None:
        for group in self.stop_groups():
            names = [name for name in group if name in self.supervisor.children]
            if names:
                say(f"stopping {', '.join(names)}")
                self.supervisor.stop(*names, timeout=timeout)
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    def kill(self) -> None:
        """At once: every process group of the stack."""
        self.supervisor.stop(timeout=0, force=True)
        if self.listener is not None:
            self.listener.close()
            self.listener = None
