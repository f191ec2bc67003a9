"""RabbitMQ beside a stack: a private virtual host for a test run or a bench run, so that
runs on one server never share a queue. Needs `rabbitmqctl` (the system service's)."""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")


def is_amqp(url: str) -> bool:
    return url.split("://", 1)[0] in AMQP_SCHEMES


def _ctl(*args: str) -> None:
    result = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)
    if result.returncode:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")


@dataclass
class VirtualHost:
    name: str
    url: str

    user: str = "guest"

    def create(self) -> None:
        _ctl("add_vhost", self.name)
        _ctl("set_permissions", "-p", self.name, self.user, ".*", ".*", ".*")

    def delete(self) -> None:
        try:
            _ctl("delete_vhost", self.name)
        except (RuntimeError, OSError, subprocess.TimeoutExpired):
            pass  # the server went away: nothing left to clean


def private_vhost(broker_url: str, *, prefix: str) -> VirtualHost | None:
    """A fresh virtual host on `broker_url`'s server for its user, and the URL to it; None
    when the URL is not RabbitMQ's."""
    if not is_amqp(broker_url):
        return None
    parts = urlsplit(broker_url)
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    vhost = VirtualHost(name, urlunsplit((parts.scheme, parts.netloc, "/" + quote(name, safe=""), parts.query, "")),
                        user=parts.username or "guest")
    vhost.create()
    return vhost
