"""pytest plugin loaded before Django (`-p tests.bootstrap`): a private world for the suite.

It points the settings at a fresh data folder, a private redis-server on a free
port, fresh PostgreSQL databases when DATABASE_URL is set, and short timeouts;
it starts that Redis for the session and stops it at the end. The suite never
touches a Redis or database that happens to run on the machine.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from devstack import rabbitmq
from devstack.redis import RedisServer, free_port

TMP = Path(tempfile.mkdtemp(prefix="eventflow-test-"))
REDIS_PORT = free_port()
# Built (not started) here: its URL carries the password it generates in its data folder.
_redis = RedisServer(TMP / "redis", port=REDIS_PORT, logfile=TMP / "logs" / "redis.log")

TEST_ENV = {
    "EVENTFLOW_DATA_DIR": str(TMP / "data"),
    "REDIS_URL": _redis.url,
    "EVENTFLOW_EXTRA_APPS": "tests.probe",
    "EVENTFLOW_VISIBILITY_TIMEOUT": "8",
    "EVENTFLOW_MAX_TRIES": "3",
    "EVENTFLOW_RETRY_BACKOFF": "0.2",
    "EVENTFLOW_SWEEP_GRACE": "1",
    "EVENTFLOW_SWEEP_INTERVAL": "0.5",
    # 2 s keeps the command tests short; the scale-out phase of .ci/run (20 workers on 2 cores) gives more.
    "EVENTFLOW_COMMAND_TIMEOUT": os.environ.get("EVENTFLOW_COMMAND_TIMEOUT", "2"),
    "EVENTFLOW_REDELIVER_AFTER": "10",
    "EVENTFLOW_LOG_LEVEL": "WARNING",
    "DJANGO_SETTINGS_MODULE": "config.settings",
    "DJANGO_DEBUG": "0",
    # The suite places orders from 127.0.0.1 by the hundred; tests of the limit set their own.
    "EVENTFLOW_ORDER_RATE_LIMIT": "0",
}
os.environ.update(TEST_ENV)

# With CELERY_BROKER_URL=amqp://… the suite runs on RabbitMQ, in a virtual host of its own
# (created here, deleted at the end): runs side by side never share a queue.
_vhost = rabbitmq.private_vhost(os.environ.get("CELERY_BROKER_URL", ""), prefix="eventflow-test")
if _vhost:
    os.environ["CELERY_BROKER_URL"] = _vhost.url


def redis_server() -> RedisServer:
    """The private Redis, started in pytest_configure."""
    return _redis


def vhost() -> rabbitmq.VirtualHost | None:
    """The suite's RabbitMQ virtual host, when it runs on RabbitMQ."""
    return _vhost


def pytest_configure(config):
    _redis.start()


def pytest_unconfigure(config):
    _redis.stop()
    if _vhost:
        _vhost.delete()
    keep = os.environ.get("EVENTFLOW_KEEP_TEST_DATA")
    if not keep:
        shutil.rmtree(TMP, ignore_errors=True)
