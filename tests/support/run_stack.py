"""The real `make run` stack (`python -m devstack.run`) in a temp data folder on a free port,
watched from outside as a user would: its output, its HTTP answers, its processes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import redis

from devstack.redis import free_port
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
# What the suite's bootstrap points at its own world; a `make run` picks its own.
_NOT_INHERITED = ("REDIS_URL", "EVENTFLOW_CHANNELS_URL", "DATABASE_URL", "EVENTFLOW_EXTRA_APPS")
READY_LINE = "Press Ctrl-C to stop everything."


class RunStack:
    def __init__(self, tmp: Path, **env: str) -> None:
        self.data = Path(tmp) / "data"
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        self.env.update(EVENTFLOW_DATA_DIR=str(self.data), PORT=str(self.port), NO_COLOR="1",
                        EVENTFLOW_ADMIN_PASSWORD="run-stack-admin",
                        # A loaded machine must not turn a graceful stop into a SIGKILL.
                        EVENTFLOW_STOP_TIMEOUT="60", **env)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.proc: subprocess.Popen | None = None

    # --- the process ------------------------------------------------------------
    def start(self, *, wait: bool = True) -> RunStack:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devstack.run"], cwd=ROOT, env=self.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        if wait:
            self.wait_line(READY_LINE, timeout=240)
        return self

    def _read(self) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            with self._changed:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_line(self, pattern: str, *, timeout: float = 120, start: int = 0) -> int:
        """Index of the first output line from `start` on matching the regex (or containing the text)."""
        regex = re.compile(pattern if pattern.startswith("^") else re.escape(pattern))
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(start, len(self.lines)):
                    if regex.search(self.lines[index]):
                        return index
                if self.proc.poll() is not None and self.proc.stdout.closed or time.monotonic() > deadline:
                    tail = "\n".join(self.lines[-60:])
                    pytest.fail(f"no output line matching {pattern!r} (exit {self.proc.poll()}); last lines:\n{tail}")
                self._changed.wait(0.5)

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"`make run` did not exit within {timeout:g}s; last lines:\n" + "\n".join(self.lines[-40:]))

    def close(self) -> None:
        """Whatever a test left running: the stack first, then any process of ours still alive."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # --- its processes ------------------------------------------------------------
    def processes(self) -> list[int]:
        """Every live process started for this stack (each carries its EVENTFLOW_DATA_DIR)."""
        marker = f"EVENTFLOW_DATA_DIR={self.data}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0") and "zombie" not in (
                    (entry / "status").read_text().lower()
                ):
                    found.append(int(entry.name))
            except (OSError, ValueError):
                continue
        return found

    def child_pid(self, needle: str) -> int:
        """The pid of the stack's direct child whose command line contains `needle`."""
        for pid in self.processes():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            ppid = int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))
            if ppid == self.proc.pid and needle in cmdline:
                return pid
        pytest.fail(f"no child of `make run` runs {needle!r}")

    # --- Redis, as a client beside the stack finds it -------------------------------
    def redis_url(self, name: str = "redis-url") -> str:
        return (self.data / ".run" / name).read_text().strip()

    def redis(self, name: str = "redis-url") -> redis.Redis:
        return redis.Redis.from_url(self.redis_url(name), socket_connect_timeout=2, socket_timeout=5)

    # --- HTTP -------------------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url(path), data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")
        except (OSError, ValueError) as error:
            return 0, {"error": str(error)}

    def healthz(self) -> tuple[int, dict]:
        return self.request("/healthz")

    def place_order(self, sku: str) -> str:
        status, body = self.request("/api/orders/", {
            "customer": {"name": "Run Stack", "email": "run@example.com"},
            "lines": [{"sku": sku, "qty": 1}], "payment_token": "tok_visa", "mode": "event",
        })
        assert status == 202, (status, body)
        return str(body["order_id"])

    def in_stock_sku(self) -> str:
        """The SKU orders' local view holds most of. That view fills from inventory's events after
        the stack says it is ready, so on a loaded machine it may take a moment to hold any."""
        def products():
            status, body = self.request("/api/products/")
            assert status == 200, body
            return body["products"]

        listed = wait_for(products, timeout=120, interval=0.5, message="orders' product view to fill")
        return max(listed, key=lambda p: int(p.get("available", 0)))["sku"]

    # --- the stack's databases, read by a process beside it (as `manage.py shell` would) --
    def django(self, code: str) -> object:
        """Run `code` (which sets `result`) in a Django process on the stack's data; return result."""
        script = (
            "import json, django; django.setup()\n" + code + "\nprint('RESULT=' + json.dumps(result, default=str))"
        )
        env = {**self.env, "DJANGO_SETTINGS_MODULE": "config.settings"}
        done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT="))
        return json.loads(line[len("RESULT="):])

    def order_statuses(self, order_ids: list[str]) -> dict[str, str]:
        return self.django(
            "from orders.models import Order\n"
            f"result = {{str(k): v for k, v in Order.objects.using('orders').filter(order_id__in={order_ids!r})"
            ".values_list('order_id', 'status')}"
        )

    def audit(self) -> dict:
        """The suite's delivery audit over everything this stack ever committed."""
        return self.django(
            "from orders.models import Order\n"
            "from tests.support.audit import Mark, audit_since\n"
            "orders = [str(o) for o in Order.objects.using('orders').values_list('order_id', flat=True)]\n"
            "a = audit_since(Mark(outbox={}, dead={}), orders=orders)\n"
            "result = {'committed': a.committed, 'lost': a.lost, 'missing_from_log': a.missing_from_log,\n"
            "          'problems': a.problems, 'dead_letters': a.dead_letters, 'applied_twice': a.applied_twice}"
        )

    def wait_audit_clean(self, timeout: float = 120) -> dict:
        def clean():
            audit = self.audit()
            if audit["problems"] or audit["dead_letters"] or audit["applied_twice"]:
                raise AssertionError(f"the audit found faults: {audit}")
            return audit if audit["committed"] and not audit["lost"] and not audit["missing_from_log"] else None

        return wait_for(clean, timeout=timeout, interval=2, message="every committed event delivered and logged")
