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


def worker_argv(queue: str, *, concurrency: int = 1, loglevel: str = "INFO") -> list[str]:
    """A Celery worker that consumes one context's queue.

    Prefetch 1 with the fair scheduler: a paused consumer must not hold messages
    it already fetched. No gossip/mingle: workers need nothing from each other.
    """
    return [
        sys.executable, "-m", "celery", "-A", "config", "worker",
        "-Q", queue, "-n", f"{queue}@%h",
        "--concurrency", str(concurrency), "--pool", "prefork",
        "--prefetch-multiplier", "1", "-O", "fair",
        "--without-gossip", "--without-mingle",
        "--loglevel", loglevel,
    ]  # fmt: skip


def daphne_argv(port: int, host: str = "127.0.0.1") -> list[str]:
    return [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "config.asgi:application"]


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
    ready: threading.Event = field(default_factory=threading.Event, repr=False)
    stopping: bool = False
    reported: bool = False
    pump: threading.Thread | None = field(default=None, repr=False)

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
    ) -> None:
        self.env = dict(os.environ if env is None else env)
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
            self.say(line, child)
            self.tails[child.name].append(line.rstrip("\r\n"))
            if child.ready_text and child.ready_text in line:
                child.ready.set()
        child.process.stdout.close()

    # --- lifecycle ------------------------------------------------------------
    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        ready_text: str | None = None,
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
        )
        previous = self.children.get(name)
        colour = previous.colour if previous else next(self._colours)
        child = Child(name=name, argv=list(argv), process=process, colour=colour, ready_text=ready_text)
        self.tails.setdefault(name, deque(maxlen=20))
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
        return self.start(name, old.argv, ready_text=old.ready_text)

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
