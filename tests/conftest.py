"""Fixtures shared by the suite: databases, the private stack, a real Daphne."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from tests import bootstrap
from tests.support.stack import Daphne, Stack

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
_ORDER = ("unit", "integration", "e2e", "faults")


def pytest_collection_modifyitems(config, items):
    """Unit tests first (they hold transactions open), then the live ones, faults last."""

    def rank(item):
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        return _ORDER.index(parts[0]) if parts[0] in _ORDER else len(_ORDER)

    items.sort(key=rank)


def _recreate_postgres_databases() -> None:
    import psycopg

    for alias, cfg in settings.DATABASES.items():
        conninfo = dict(host=cfg["HOST"] or "127.0.0.1", port=cfg["PORT"] or 5432, user=cfg["USER"],
                        password=cfg["PASSWORD"] or None, dbname="postgres", autocommit=True)
        with psycopg.connect(**{k: v for k, v in conninfo.items() if v is not None}) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{cfg["NAME"]}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{cfg["NAME"]}"')


@pytest.fixture(scope="session", autouse=True)
def _collected_static():
    """Debug is off, as in production: pages name hashed static files from STATIC_ROOT's
    manifest, so collect them once before any page is rendered or Daphne starts."""
    call_command("collectstatic", interactive=False, verbosity=0)


@pytest.fixture(scope="session")
def django_db_setup(django_db_blocker):
    """Migrate the suite's own databases once (fresh SQLite files, or fresh PostgreSQL databases)."""
    with django_db_blocker.unblock():
        if any(cfg["ENGINE"].endswith("postgresql") for cfg in settings.DATABASES.values()):
            _recreate_postgres_databases()
        for alias in settings.DATABASES:
            call_command("migrate", database=alias, verbosity=0, interactive=False)


@pytest.fixture
def live_db(django_db_setup, django_db_blocker):
    """Real commits: autocommit, on_commit callbacks fire, nothing rolled back or flushed."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture(scope="session")
def stack(django_db_setup, django_db_blocker):
    """The private Redis plus a real Celery worker per context queue and the relay sweep."""
    running = Stack(bootstrap.redis_server(), bootstrap.TMP / "logs")
    with django_db_blocker.unblock():
        running.start()
        yield running
        running.stop()


_daphne: Daphne | None = None


@pytest.fixture(scope="session")
def daphne(stack):
    global _daphne
    server = _daphne = Daphne(stack.logs_dir).start()
    yield server
    _daphne = None
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_daphne_after_a_redis_restart():
    """A test that restarted Redis leaves Daphne's channel-layer connections dead, and
    each socket consumer dies once on them (browsers reconnect; test clients do not):
    give the next test a Daphne on the same port with fresh connections."""
    before = bootstrap.redis_server().pid
    yield
    if _daphne is not None and bootstrap.redis_server().pid != before:
        _daphne.stop()
        _daphne.start()


@pytest.fixture(scope="session")
def daphne_url(daphne) -> str:
    return daphne.url


@pytest.fixture(scope="session")
def ws_origin(daphne) -> str:
    return daphne.url


def pytest_sessionfinish(session, exitstatus):
    """Keep the processes' logs where a person (or CI) can read them after the run."""
    logs = bootstrap.TMP / "logs"
    if logs.exists():
        target = ARTIFACTS / "logs"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(logs, target)
        if exitstatus not in (0, 5) and os.environ.get("CI"):
            for path in sorted(target.glob("*.log")):
                tail = path.read_text(errors="replace").splitlines()[-25:]
                print(f"\n----- last lines of {path.name} -----\n" + "\n".join(tail))
