"""PostgreSQL under Daphne: as Django advises for ASGI, the ASGI process keeps no persistent
connections (each request's thread would keep its own), while workers keep theirs.

Runs a Daphne of its own on databases of its own on the PostgreSQL server of DATABASE_URL
(or 127.0.0.1:5432), and counts that server's connections to them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests import bootstrap
from tests.support.stack import Daphne
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
SERVER = (os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/x").rsplit("/", 1)[0]


def admin():
    import psycopg

    try:
        return psycopg.connect(SERVER.replace("postgres://", "postgresql://", 1) + "/postgres", autocommit=True,
                               connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at {SERVER}: {exc}")


def settings_of(env: dict, code: str) -> dict:
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1])


SHOW = ("import json; from django.conf import settings; "
        "print(json.dumps({a: c['CONN_MAX_AGE'] for a, c in settings.DATABASES.items()}))")


def test_the_asgi_process_has_no_persistent_connections_and_workers_do():
    env = {**os.environ, "DATABASE_URL": f"{SERVER}/ef_settings_only"}
    env.pop("EVENTFLOW_ASGI", None)
    worker = settings_of(env, "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); "
                              "django.setup(); " + SHOW)
    asgi = settings_of(env, "import config.asgi; " + SHOW)
    assert set(worker.values()) == {600} and set(asgi.values()) == {0}


@pytest.mark.live
def test_connections_do_not_pile_up_under_daphne(monkeypatch):
    with admin() as conn:
        stem = f"ef_asgi_{uuid.uuid4().hex[:8]}"
        url = f"{SERVER}/{stem}"
        monkeypatch.setenv("DATABASE_URL", url)
        daphne = None
        try:
            for command in (["ensure_databases"], ["migrate", "--database", "orders", "--verbosity", "0"]):
                done = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=dict(os.environ),
                                      capture_output=True, text=True, timeout=120)
                assert done.returncode == 0, done.stderr
            daphne = Daphne(bootstrap.TMP / "logs").start()

            def connections() -> int:
                return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname LIKE %s",
                                    (f"{stem}_%",)).fetchone()[0]

            for _ in range(40):  # each request reads the orders database
                try:
                    urllib.request.urlopen(f"{daphne.url}/api/orders/{uuid.uuid4()}/", timeout=30)
                    pytest.fail("an unknown order was found")
                except urllib.error.HTTPError as error:
                    assert error.code == 404
            wait_for(lambda: connections() <= 1, timeout=30,
                     message="Daphne's connections to close after their requests")
        finally:
            if daphne is not None:
                daphne.stop()
            for alias in ("default", "orders", "inventory", "payments", "shipping", "dashboard"):
                conn.execute(f'DROP DATABASE IF EXISTS "{stem}_{alias}" WITH (FORCE)')
