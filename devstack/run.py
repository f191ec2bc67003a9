"""`python -m devstack.run` (what `make run` calls): the whole system on this machine.

Redis (private, unless REDIS_URL is set: one server for the broker and one,
memory-bounded, for the channel layer), the context databases migrated and
seeded, Daphne, one Celery worker per context queue and the relay sweep. A child
that dies is started again after a backoff, unless it keeps dying (the crash-loop
limit), which stops everything. Ctrl-C or SIGTERM stops every process it started:
workers, Daphne, the sweep, Redis last.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from config.env import data_dir, env_float, env_int, env_str
from devstack import status
from devstack._children import killpg_quietly
from devstack.processes import REPO_ROOT, Supervisor
from devstack.stack import Stack
from devstack.redis import RedisServer, write_private

# Loopback unless asked; config/settings.py refuses a wider bind with the default secret key.
HOST = os.environ.get("EVENTFLOW_BIND", "127.0.0.1")
# The channel layer's own server: messages to websockets may be dropped (clients
# refetch gaps by seq), so it evicts the oldest instead of growing without bound.
CHANNELS_MAXMEMORY = env_str("EVENTFLOW_CHANNELS_MAXMEMORY", "64mb")
CHANNELS_POLICY = "allkeys-lru"
# How long a stop waits for each group (workers finishing their task) before SIGKILL.
STOP_TIMEOUT = env_float("EVENTFLOW_STOP_TIMEOUT", 10.0)
# The private broker's name among the children, and how long its clients get to stop when
# it was restarted (the messages they held come back: a SIGKILL after it loses nothing).
BROKER = "redis"
BROKER_CLIENT_STOP_TIMEOUT = 10.0


class StopRequested:
    """Set by SIGINT, SIGTERM or SIGHUP; the main loop checks it between steps.

    A flag rather than an exception: an exception raised between Popen() and the
    bookkeeping that follows would leak the process it just started. A second
    signal kills whatever is still running at once.
    """

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.on_force = lambda: None

    def __bool__(self) -> bool:
        return self.signal_name is not None

    def handle(self, signum, frame) -> None:
        if self.signal_name is None:
            self.signal_name = signal.Signals(signum).name
            return
        try:
            say("second signal: killing everything now")
        except RuntimeError:
            pass  # interrupted our own write to stdout
        self.on_force()


def say(message: str) -> None:
    # One write, newline included: print() writes the text and its newline apart, and a
    # child's output line (written by the supervisor's pump threads) could land in between.
    sys.stdout.write(f"eventflow: {message}\n")
    sys.stdout.flush()


def acquire_lock(path: Path, port: int):
    """Hold an exclusive flock for our lifetime; exit 1 if another run holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        try:
            owner = json.loads(handle.read() or "{}")
        except ValueError:
            owner = {}
        pid, other_port = owner.get("pid", "?"), owner.get("port", "?")
        print(
            f"eventflow is already running (pid {pid}, dashboard http://{HOST}:{other_port}/) "
            f"— stop it with Ctrl-C first (lock: {path})",
            file=sys.stderr,
        )
        sys.exit(1)
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "port": port}))
    handle.flush()
    return handle  # the lock lives as long as this file stays open


def ensure_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Daphne does
        try:
            sock.bind((HOST, port))
        except OSError as error:
            print(
                f"eventflow: port {port} on {HOST} is not free ({error.strerror}); "
                f"stop what uses it or choose another, e.g. `PORT={port + 1} make run`",
                file=sys.stderr,
            )
            sys.exit(1)


def manage(env: dict[str, str], *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE if capture else None,
        text=True,
    )


def prepare_databases(env: dict[str, str], stop: StopRequested) -> str:
    """ensure_databases, migrate_all, seed_demo, ensure_admin.

    Returns what ensure_admin printed (maybe a new password), to show it again
    next to the dashboard URL rather than above the workers' start-up output.
    """

    def step(*args: str, capture: bool = False) -> str:
        say("manage.py " + " ".join(args))
        result = manage(env, *args, capture=capture)
        if result.returncode and not stop:
            if result.stdout:
                print(result.stdout, end="", flush=True)
            raise SystemExit(f"eventflow: manage.py {' '.join(args)} failed (exit code {result.returncode})")
        return result.stdout or ""

    step("collectstatic", "--noinput", "--verbosity", "0")  # whitenoise serves STATIC_ROOT's hashed files
    for args in (("ensure_databases",), ("migrate_all", "--verbosity", "0"), ("seed_demo",)):
        if stop:
            return ""
        step(*args)
    return "" if stop else step("ensure_admin", capture=True)


class Restarts:
    """When each dead child may start again, and whether it is crash-looping.

    The delay doubles with each death inside the window (0.5 s, 1 s, 2 s … up to
    the cap); more than `limit` deaths inside `window` seconds is a crash loop.
    """

    def __init__(self, *, limit: int, window: float, first: float, cap: float) -> None:
        self.limit, self.window, self.first, self.cap = limit, window, first, cap
        self.deaths: dict[str, deque[float]] = {}
        self.count: dict[str, int] = {}
        self.due: dict[str, float] = {}

    @classmethod
    def from_env(cls) -> Restarts:
        return cls(
            limit=env_int("EVENTFLOW_RESTART_LIMIT", 5),
            window=env_float("EVENTFLOW_RESTART_WINDOW", 60.0),
            first=env_float("EVENTFLOW_RESTART_BACKOFF", 0.5),
            cap=env_float("EVENTFLOW_RESTART_BACKOFF_MAX", 10.0),
        )

    def died(self, name: str, now: float) -> float | None:
        """Schedule the restart of `name`; its delay, or None when it is crash-looping."""
        recent = self.deaths.setdefault(name, deque())
        recent.append(now)
        while now - recent[0] > self.window:
            recent.popleft()
        if len(recent) > self.limit:
            return None
        delay = min(self.cap, self.first * 2 ** (len(recent) - 1))
        self.count[name] = self.count.get(name, 0) + 1
        self.due[name] = now + delay
        return delay

    def take_due(self, now: float) -> list[str]:
        """The names whose backoff is over, removed from the schedule."""
        names = [name for name, at in self.due.items() if at <= now]
        for name in names:
            del self.due[name]
        return names


@dataclass
class Health:
    """What is down while it restarts, kept in data/.run/status.json for /healthz to read."""

    data_dir: Path
    down: dict[str, str] = field(default_factory=dict)

    def set(self, name: str, state: str) -> None:
        if self.down.get(name) != state:
            self.down[name] = state
            status.write_down(self.data_dir, self.down)

    def up(self, name: str) -> None:
        if self.down.pop(name, None) is not None:
            status.write_down(self.data_dir, self.down)

    def clear(self) -> None:
        status.clear(self.data_dir)


class CrashLoop(Exception):
    """A child died more often than the restart limit allows."""


@dataclass
class RedisChild:
    """A private Redis server watched like the supervisor's children."""

    name: str
    server: RedisServer

    def tail(self) -> list[str]:
        return self.server.log_tail(20).splitlines()


class Healer:
    """Notices children that died on their own and starts them again after a backoff."""

    def __init__(self, stack: Stack, servers: list[RedisChild], health: Health,
                 restarts: Restarts, stop: StopRequested) -> None:
        self.stack, self.supervisor, self.servers, self.health = stack, stack.supervisor, servers, health
        self.restarts, self.stop = restarts, stop
        self.starting: set[str] = set()  # restarted, not ready yet

    def _announce(self, name: str, code: int | None, delay: float | None) -> None:
        child = self.supervisor.children.get(name)
        if delay is None:
            lines = self.supervisor.tail(name) if child is not None else self._server(name).tail()
            window = self.restarts.window
            raise CrashLoop(
                f"eventflow: {name} died {self.restarts.limit + 1} times within {window:g} s "
                f"(EVENTFLOW_RESTART_LIMIT={self.restarts.limit}, EVENTFLOW_RESTART_WINDOW={window:g}); "
                f"stopping everything. The last lines of {name}:\n" + "\n".join("    " + line for line in lines)
            )
        line = f"exited with {code}; restarting in {delay:g} s (restart {self.restarts.count[name]})"
        if child is not None:
            self.supervisor.say(line, child)
        else:
            say(f"{name} {line}")
        self.health.set(name, f"exited with {code}; restarting")

    def _server(self, name: str) -> RedisChild:
        return next(s for s in self.servers if s.name == name)

    def _died(self, name: str, code: int | None) -> None:
        self.starting.discard(name)
        self._announce(name, code, self.restarts.died(name, time.monotonic()))

    def check(self) -> None:
        """One round: report deaths, start what is due, mark what became ready."""
        for name, code in self.supervisor.poll():
            self._died(name, code)
        for watched in self.servers:
            code = watched.server.exit_code
            if code is not None and watched.name not in self.restarts.due:
                watched.server.stop()  # forget the dead process (and any child it forked)
                self._died(watched.name, code)
        for name in self.restarts.take_due(time.monotonic()):
            if self.stop:
                return  # a shutdown has begun: start nothing more
            self._start(name)
        for name in list(self.starting):
            if self._ready(name):
                self.starting.discard(name)
                self.health.up(name)
                say(f"{name} is back")
                if name == BROKER:
                    self._restart_broker_clients()

    def _restart_broker_clients(self) -> None:
        """Start the workers and the sweep afresh on a broker that was restarted. Celery's
        Redis transport reconnects, but does not always consume again (celery/celery#8030,
        #8091): a worker that silently stops would stall every flow through its queue. A
        restart is safe: deliveries are at least once and the inboxes deduplicate."""
        workers = [name for name in self.stack.worker_names() if self.supervisor.alive(name)]
        names = workers + (["sweep"] if self.supervisor.alive("sweep") else [])
        say(f"restarting {len(workers)} worker(s) and the sweep on the restarted broker")
        for name in names:
            self.health.set(name, "restarting on the restarted broker")
        self.supervisor.stop(*names, timeout=BROKER_CLIENT_STOP_TIMEOUT)
        if self.stop:
            return  # a shutdown began meanwhile: start nothing more
        for name in names:
            self.supervisor.restart(name)
            self.starting.add(name)

    def _start(self, name: str) -> None:
        self.health.set(name, "starting")
        if name in self.supervisor.children:
            self.supervisor.restart(name)
            self.starting.add(name)
            return
        watched = self._server(name)
        try:
            watched.server.start()  # same port, data folder and password
        except RuntimeError as error:
            say(f"{name} did not start again: {str(error).splitlines()[0]}")
            self._died(name, watched.server.last_exit_code)
            return
        self.starting.add(name)

    def _ready(self, name: str) -> bool:
        if name in self.stack.daphne_names():
            return self.stack.listening()
        child = self.supervisor.children.get(name)
        if child is not None:
            return child.ready.is_set() if child.ready_text else child.process.poll() is None
        return self._server(name).server.running


def main() -> int:
    port = env_int("PORT", 8000)
    data = data_dir()
    lock = acquire_lock(data / ".run" / "eventflow.lock", port)  # noqa: F841 (held open)
    ensure_port_free(port)
    shutil.rmtree(os.environ.get("PROMETHEUS_MULTIPROC_DIR", data / "prometheus"), ignore_errors=True)  # an earlier run's metrics

    env = dict(os.environ)
    supervisor = Supervisor(env=env)
    stack = Stack(supervisor, port=port, host=HOST)
    servers: list[RedisChild] = []
    stop = StopRequested()
    stop.on_force = lambda: kill_everything(stack, servers)
    health = Health(data)
    health.clear()  # a file left by a run that was killed
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop.handle)

    code = 0
    try:
        if env.get("REDIS_URL"):
            say(f"using REDIS_URL={env['REDIS_URL']}")
        else:
            # Started first: seeding may publish events, and they must reach our
            # private broker, never a Redis that happens to run on this machine.
            broker = RedisServer(data / "redis", logfile=data / ".run" / "redis.log")
            servers.append(RedisChild(BROKER, broker))
            broker.start()
            env["REDIS_URL"] = broker.url
            say(f"Redis {broker.public_url} (pid {broker.pid}, data {broker.data_dir}, "
                f"password in {broker.data_dir / 'password'}, log {broker.logfile})")
            # The channel layer on a server of its own: a burst for slow websockets
            # can fill only its bounded memory, never the broker's.
            channels = RedisServer(data / "redis-channels", appendonly=False, maxmemory=CHANNELS_MAXMEMORY,
                                   maxmemory_policy=CHANNELS_POLICY, logfile=data / ".run" / "redis-channels.log")
            servers.append(RedisChild("redis-channels", channels))
            channels.start()
            env["EVENTFLOW_CHANNELS_URL"] = channels.url
            say(f"Redis for the channel layer {channels.public_url} (pid {channels.pid}, "
                f"maxmemory {CHANNELS_MAXMEMORY}, {CHANNELS_POLICY})")
        supervisor.env = env
        # `manage.py shell` and other commands run beside the stack read them (config.env);
        # they hold the password, so only this user may read them.
        for file_name, key in (("redis-url", "REDIS_URL"), ("channels-url", "EVENTFLOW_CHANNELS_URL")):
            if key in env:
                write_private(data / ".run" / file_name, env[key] + "\n")

        admin_notice = prepare_databases(env, stop)

        if not stop:
            say(f"{stack.workers} worker(s) per context queue, concurrency {stack.concurrency}, "
                f"{stack.daphnes} Daphne process(es) on port {port}")
            # The URL last, after the workers' start-up banners, where it stays visible.
            late = stack.start(timeout=30, cancel=lambda: bool(stop))
            if late and not stop:
                say(f"not ready after 30s: {', '.join(late)} (see their output above)")
        if not stop:
            for line in admin_notice.strip("\n").splitlines():
                supervisor.say(line)
            supervisor.say(f"Dashboard: http://{HOST}:{port}/   Admin: http://{HOST}:{port}/admin/ (user admin)")
            supervisor.say("Press Ctrl-C to stop everything.")

        healer = Healer(stack, servers, health, Restarts.from_env(), stop)
        while not stop:
            healer.check()
            time.sleep(0.2)
        say(f"{stop.signal_name} received: stopping")
    except CrashLoop as error:
        print(error, file=sys.stderr, flush=True)
        code = 1
    except SystemExit as error:
        if error.code not in (None, 0):
            if isinstance(error.code, str):
                print(error.code, file=sys.stderr, flush=True)
            code = 1
    except RuntimeError as error:  # e.g. Redis or Daphne did not come up: the message says why
        print(f"eventflow: {error}", file=sys.stderr, flush=True)
        code = 1
    finally:
        shutdown(stack, [watched.server for watched in servers])
        for file_name in ("redis-url", "channels-url"):
            (data / ".run" / file_name).unlink(missing_ok=True)
        health.clear()
        say("stopped")
    return code


def kill_everything(stack: Stack, servers: list[RedisChild]) -> None:
    """SIGKILL every group we started; the waits in shutdown() then return at once."""
    for child in list(stack.supervisor.children.values()):
        if child.process.returncode is None:
            killpg_quietly(child.pid, signal.SIGKILL)
    for watched in servers:
        watched.server.signal_group(signal.SIGKILL)


def shutdown(stack: Stack, servers: list[RedisServer]) -> None:
    """Workers first (they may be finishing a task), then Daphne, the sweep, Redis last."""
    stack.stop(timeout=STOP_TIMEOUT, say=say)
    if any(server.running for server in servers):
        say("stopping Redis")
    for server in servers:
        server.stop(timeout=STOP_TIMEOUT)


if __name__ == "__main__":
    sys.exit(main())
