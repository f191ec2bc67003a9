"""The command lines of eventflow's processes, shared by `make run` and the tests,
and a small supervisor that runs them with their output prefixed by name."""

from __future__ import annotations

import itertools
import os
from collections import deque
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from config.env import CONTEXTS
from devstack._children import die_with_parent, killpg_quietly

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTEXT_QUEUES = CONTEXTS  # one worker (and queue) per context


def workers_per_queue() -> int:
    """EVENTFLOW_WORKERS: worker processes per context queue (default 1)."""
    return max(1, int(os.environ.get("EVENTFLOW_WORKERS", "1")))


def worker_concurrency() -> int:
    """EVENTFLOW_CONCURRENCY: the pool size of each worker (default 1)."""
    return max(1, int(os.environ.get("EVENTFLOW_CONCURRENCY", "1")))


def worker_names(queue: str, count: int | None = None) -> list[str]:
    """The supervisor's names of `queue`'s workers: `orders` alone, else `orders-1`, `orders-2`…"""
    count = workers_per_queue() if count is None else count
    return [queue] if count == 1 else [f"{queue}-{i}" for i in range(1, count + 1)]


def worker_argv(queue: str, *, index: int = 1, concurrency: int | None = None, loglevel: str = "INFO") -> list[str]:
    """A Celery worker that consumes one context's queue.

    Its node name is `<queue>@<host>` (the `index`-th of a host: `<queue>@w<index>.<host>`),
    unique across hosts and processes; eventbus.control finds a context's workers by the
    part before `@`. Prefetch 1 with the fair scheduler: a paused consumer must not hold
    messages it already fetched. No gossip/mingle: workers need nothing from each other.
    """
    node = f"{queue}@%h" if index == 1 else f"{queue}@w{index}.%h"
    return [
        sys.executable, "-m", "celery", "-A", "config", "worker",
        "-Q", queue, "-n", node,
        "--concurrency", str(concurrency or worker_concurrency()), "--pool", "prefork",
        "--prefetch-multiplier", "1", "-O", "fair",
        "--without-gossip", "--without-mingle",
        "--loglevel", loglevel,
    ]  # fmt: skip


def daphne_argv(port: int, host: str = "127.0.0.1", *, fd: int | None = None) -> list[str]:
    """Daphne on host:port, or on an inherited listening socket `fd` (several share one port)."""
    where = ["--fd", str(fd)] if fd is not None else ["-b", host, "-p", str(port)]
    return [sys.executable, "-m", "daphne", *where, "config.asgi:application"]


def sweep_argv() -> list[str]:
    """The relay sweep: resends outbox rows left unsent (run with cwd = REPO_ROOT)."""
    return [sys.executable, "manage.py", "relay_sweep"]


_COLOURS = ("36", "33", "35", "32", "34", "91", "96", "93")  # ANSI foregrounds


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen
    colour: str
    ready_text: str | None = None
    pass_fds: tuple[int, ...] = ()
    ready: threading.Event = field(default_factory=threading.Event, repr=False)
    stopping: bool = False
    reported: bool = False
    pump: threading.Thread | None = field(default=None, repr=False)
    log: object = field(default=None, repr=False)  # its own log file, when the supervisor keeps them

    @property
    def pid(self) -> int:
        return self.process.pid


class Supervisor:
    """Starts named children, prefixes their output, notices deaths and stops them all.

    Each child runs in its own process group (a Ctrl-C in the terminal reaches only
    us, so we choose the stop order) with cwd = the repo root.
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path = REPO_ROOT,
        out: TextIO | None = None,
        colour: bool | None = None,
        logs_dir: Path | None = None,
    ) -> None:
        self.env = dict(os.environ if env is None else env)
        # With a folder, each child's output also goes to <name>.log there (the tests read them).
        self.logs_dir = Path(logs_dir) if logs_dir is not None else None
        self.cwd = Path(cwd)
        self.out = out or sys.stdout
        if colour is None:
            colour = self.out.isatty() and "NO_COLOR" not in os.environ
        self.colour = colour
        self.children: dict[str, Child] = {}
        # The last lines of each name's output, across its restarts (for a crash-loop report).
        self.tails: dict[str, deque[str]] = {}
        self._colours = itertools.cycle(_COLOURS)
        self._lock = threading.Lock()

    # --- output ---------------------------------------------------------------
    def _prefix(self, child: Child) -> str:
        width = max(len(name) for name in self.children)
        label = f"{child.name:<{width}} | "
        return f"\033[{child.colour}m{label}\033[0m" if self.colour else label

    def say(self, line: str, child: Child | None = None) -> None:
        """Write one line (prefixed with the child's name when given)."""
        text = (self._prefix(child) if child else "") + line.rstrip("\r\n") + "\n"
        with self._lock:
            self.out.write(text)
            self.out.flush()

    def _pump(self, child: Child) -> None:
        for raw in iter(child.process.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            if child.log is not None:
                child.log.write(raw)
            else:
                self.say(line, child)
            self.tails[child.name].append(line.rstrip("\r\n"))
            if child.ready_text and child.ready_text in line:
                child.ready.set()
        child.process.stdout.close()
        if child.log is not None:
            child.log.close()

    # --- lifecycle ------------------------------------------------------------
    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        ready_text: str | None = None,
        pass_fds: Sequence[int] = (),
    ) -> Child:
        """Start `argv` as `name`; `child.ready` is set once a line of its output contains ready_text."""
        if name in self.children and self.children[name].process.poll() is None:
            raise RuntimeError(f"{name} is already running (pid {self.children[name].pid})")
        child_env = {**self.env, **(env or {})}
        child_env.setdefault("PYTHONUNBUFFERED", "1")  # lines as they happen, not per 8 KB
        process = subprocess.Popen(
            list(argv),
            cwd=self.cwd,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
            pass_fds=tuple(pass_fds),
        )
        previous = self.children.get(name)
        colour = previous.colour if previous else next(self._colours)
        child = Child(name=name, argv=list(argv), process=process, colour=colour, ready_text=ready_text,
                      pass_fds=tuple(pass_fds))
        self.tails.setdefault(name, deque(maxlen=20))
        if self.logs_dir is not None:
            self.logs_dir.mkdir(parents=True, exist_ok=True)
            child.log = open(self.logs_dir / f"{name}.log", "ab", buffering=0)
        child.pump = threading.Thread(target=self._pump, args=(child,), name=f"pump-{name}", daemon=True)
        self.children[name] = child
        child.pump.start()
        return child

    def poll(self) -> list[tuple[str, int]]:
        """Children that died on their own since the last call, each reported once.

        What the dead child left in its group (a Celery worker's pool processes) is
        killed, so that a restart never runs beside the remains of the last one.
        """
        dead = []
        for child in self.children.values():
            code = child.process.poll()
            if code is not None and not child.stopping and not child.reported:
                child.reported = True
                dead.append((child.name, code))
                killpg_quietly(child.pid, signal.SIGKILL)
                if child.pump:
                    child.pump.join(timeout=1)  # its last words first
        return dead

    def restart(self, name: str) -> Child:
        """Start `name` again with the command line and ready text it had."""
        old = self.children[name]
        return self.start(name, old.argv, ready_text=old.ready_text, pass_fds=old.pass_fds)

    def tail(self, name: str) -> list[str]:
        return list(self.tails.get(name, ()))

    def wait_ready(self, *names: str, timeout: float = 30, cancel: Callable[[], bool] = lambda: False) -> list[str]:
        """Wait until the named children printed their ready_text; return those that did not."""
        deadline = time.monotonic() + timeout
        for name in names:
            child = self.children[name]
            while not child.ready.wait(0.1) and child.process.poll() is None:
                if cancel() or time.monotonic() > deadline:
                    break
        return [name for name in names if not self.children[name].ready.is_set()]

    def alive(self, name: str) -> bool:
        child = self.children.get(name)
        return child is not None and child.process.poll() is None

    def stop(self, *names: str, timeout: float = 10, force: bool = False) -> None:
        """Stop the named children (all when none given) together.

        SIGTERM goes to each group leader only: a Celery worker then finishes its
        running task and stops its own pool (pool processes reset SIGTERM to the
        default, so a group-wide SIGTERM would kill tasks midway). After `timeout`,
        or at once with force=True, SIGKILL goes to the whole group, and to any
        process left in a group whose leader has exited.
        """
        chosen = [self.children[n] for n in (names or list(self.children)) if n in self.children]
        for child in chosen:
            child.stopping = True
            if child.process.poll() is None:
                if force:
                    killpg_quietly(child.pid, signal.SIGKILL)
                else:
                    child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for child in chosen:
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"*** {child.name} did not stop within {timeout:g}s: SIGKILL")
                killpg_quietly(child.pid, signal.SIGKILL)
                child.process.wait()
            killpg_quietly(child.pid, signal.SIGKILL)  # stragglers of the group, if any
            if child.pump:
                child.pump.join(timeout=2)

    def stop_all(self, timeout: float = 10) -> None:
        self.stop(timeout=timeout)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()
