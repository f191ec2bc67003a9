"""`python -m devstack.run` (what `make run` calls): the whole system on this machine.

Redis (private, unless REDIS_URL is set), the context databases migrated and
seeded, Daphne, one Celery worker per context queue and the relay sweep. Ctrl-C
or SIGTERM stops every process it started: workers, Daphne, the sweep, Redis last.
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
from pathlib import Path

from config.env import data_dir, env_int
from devstack._children import killpg_quietly
from devstack.processes import CONTEXT_QUEUES, REPO_ROOT, Supervisor, daphne_argv, sweep_argv, worker_argv
from devstack.redis import RedisServer

# Loopback unless asked; config/settings.py refuses a wider bind with the default secret key.
HOST = os.environ.get("EVENTFLOW_BIND", "127.0.0.1")


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
            print("eventflow: second signal: killing everything now", flush=True)
        except RuntimeError:
            pass  # interrupted our own write to stdout
        self.on_force()


def say(message: str) -> None:
    print(f"eventflow: {message}", flush=True)


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


def has_command(env: dict[str, str], name: str) -> bool | None:
    """Whether manage.py knows `name`; None when Django itself failed to start."""
    probe = (
        "import os, sys, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup(); "
        "from django.core.management import get_commands; "
        f"sys.exit(0 if {name!r} in get_commands() else 3)"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, env=env)
    if result.returncode not in (0, 3):
        return None
    return result.returncode == 0


def prepare_databases(env: dict[str, str], stop: StopRequested) -> str:
    """ensure_databases, migrate_all, seed_demo (once it exists), ensure_admin.

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
    for name in ("ensure_databases", "migrate_all", "seed_demo"):
        if stop:
            return ""
        if name == "seed_demo":
            known = has_command(env, name)
            if known is None:
                if stop:
                    return ""
                raise SystemExit("eventflow: Django failed to start, see the error above")
            if not known:
                say("no seed_demo command yet: starting with an empty catalog")
                continue
        step(*((name, "--verbosity", "0") if name == "migrate_all" else (name,)))
    return "" if stop else step("ensure_admin", capture=True)


def wait_for_port(port: int, supervisor: Supervisor, name: str, stop: StopRequested, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop:
        if not supervisor.alive(name):
            raise SystemExit(f"eventflow: {name} exited while starting, see its output above")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    if not stop:
        raise SystemExit(f"eventflow: {name} did not listen on port {port} within {timeout:g}s")


def main() -> int:
    port = env_int("PORT", 8000)
    data = data_dir()
    lock = acquire_lock(data / ".run" / "eventflow.lock", port)  # noqa: F841 (held open)
    ensure_port_free(port)
    shutil.rmtree(os.environ.get("PROMETHEUS_MULTIPROC_DIR", data / "prometheus"), ignore_errors=True)  # an earlier run's metrics

    env = dict(os.environ)
    supervisor = Supervisor(env=env)
    redis_server: RedisServer | None = None
    stop = StopRequested()
    stop.on_force = lambda: kill_everything(supervisor, redis_server)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop.handle)

    code = 0
    try:
        if env.get("REDIS_URL"):
            say(f"using REDIS_URL={env['REDIS_URL']}")
        else:
            # Started first: seeding may publish events, and they must reach our
            # private broker, never a Redis that happens to run on this machine.
            redis_server = RedisServer(data / "redis", logfile=data / ".run" / "redis.log")
            redis_server.start()
            env["REDIS_URL"] = redis_server.url
            say(f"Redis {redis_server.url} (pid {redis_server.pid}, data {redis_server.data_dir}, log {redis_server.logfile})")
        supervisor.env = env
        # `manage.py shell` and other commands run beside the stack read it (config.env).
        (data / ".run" / "redis-url").write_text(env["REDIS_URL"] + "\n")

        admin_notice = prepare_databases(env, stop)

        if not stop:
            supervisor.start("daphne", daphne_argv(port, HOST))
            for queue in CONTEXT_QUEUES:
                supervisor.start(queue, worker_argv(queue), ready_text=" ready.")
            supervisor.start("sweep", sweep_argv())
            wait_for_port(port, supervisor, "daphne", stop)
            # The URL last, after the workers' start-up banners, where it stays visible.
            late = supervisor.wait_ready(*CONTEXT_QUEUES, timeout=30, cancel=lambda: bool(stop))
            if late and not stop:
                say(f"not ready after 30s: {', '.join(late)} (see their output above)")
        if not stop:
            for line in admin_notice.strip("\n").splitlines():
                supervisor.say(line)
            supervisor.say(f"Dashboard: http://{HOST}:{port}/   Admin: http://{HOST}:{port}/admin/ (user admin)")
            supervisor.say("Press Ctrl-C to stop everything.")

        while not stop:
            for name, _ in supervisor.poll():
                if name == "daphne":
                    raise SystemExit("eventflow: the web server died; stopping everything")
            if redis_server is not None and not redis_server.running:
                raise SystemExit("eventflow: Redis died; stopping everything. Its log:\n" + redis_server.log_tail())
            time.sleep(0.2)
        say(f"{stop.signal_name} received: stopping")
    except SystemExit as error:
        if error.code not in (None, 0):
            if isinstance(error.code, str):
                print(error.code, file=sys.stderr, flush=True)
            code = 1
    except RuntimeError as error:  # e.g. Redis did not come up: the message says why
        print(f"eventflow: {error}", file=sys.stderr, flush=True)
        code = 1
    finally:
        shutdown(supervisor, redis_server)
        (data / ".run" / "redis-url").unlink(missing_ok=True)
        say("stopped")
    return code


def kill_everything(supervisor: Supervisor, redis_server: RedisServer | None) -> None:
    """SIGKILL every group we started; the waits in shutdown() then return at once."""
    for child in supervisor.children.values():
        if child.process.returncode is None:
            killpg_quietly(child.pid, signal.SIGKILL)
    if redis_server is not None and redis_server.pid:
        killpg_quietly(redis_server.pid, signal.SIGKILL)


def shutdown(supervisor: Supervisor, redis_server: RedisServer | None) -> None:
    """Workers first (they may be finishing a task), then Daphne, the sweep, Redis last."""
    for group in (CONTEXT_QUEUES, ("daphne",), ("sweep",)):
        if any(name in supervisor.children for name in group):
            say(f"stopping {', '.join(group)}")
            supervisor.stop(*group)
    if redis_server is not None and redis_server.running:
        say("stopping Redis")
    if redis_server is not None:
        redis_server.stop()


if __name__ == "__main__":
    sys.exit(main())
