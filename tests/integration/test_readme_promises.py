"""Promises of the README that had no test: migrate_all and ensure_databases on a fresh
data folder (and a fresh PostgreSQL when DATABASE_URL is set), /healthz naming the failing
part, the relay's overdue resend, the hybrid stock check succeeding, and the stock-check
switch refused to anonymous callers."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.test import Client

from eventbus import flags
from eventbus.models import OutboxMessage
from orders.models import Order
from tests.support.bus import new_probe_id, probe_effects, publish_probe
from tests.support.flow import assert_flow_invariants, seed_products
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]
ROOT = Path(__file__).resolve().parents[2]
ALIASES = ("default", "orders", "inventory", "payments", "shipping", "dashboard")


def manage(*args: str, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


def fresh_env(tmp_path: Path, database_url: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["EVENTFLOW_DATA_DIR"] = str(tmp_path / "data")
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def database_setups() -> list:
    setups = [pytest.param(None, id="sqlite")]
    if os.environ.get("DATABASE_URL"):
        setups.append(pytest.param(os.environ["DATABASE_URL"], id="postgresql"))
    return setups


@pytest.mark.parametrize("suite_url", database_setups())
def test_ensure_databases_then_migrate_all_set_up_every_alias_from_nothing(tmp_path, suite_url):
    url = None
    if suite_url:  # a database name of this test's own on the suite's server
        parts = urlsplit(suite_url)
        url = urlunsplit((parts.scheme, parts.netloc, f"/ef_promise_{uuid.uuid4().hex[:8]}", parts.query, ""))
    env = fresh_env(tmp_path, url)
    try:
        first = manage("ensure_databases", env=env)
        if url:
            assert all(f"{alias}: created database" in first.stdout for alias in ALIASES), first.stdout
            second = manage("ensure_databases", env=env).stdout  # idempotent
            assert all(f"{alias}: database {url.rsplit('/', 1)[-1]}_{alias} exists" in second for alias in ALIASES), second
        else:
            assert "no PostgreSQL databases configured" in first.stdout
        migrated = manage("migrate_all", env=env)
        assert [line for line in migrated.stdout.splitlines() if line.startswith("== migrate --database")] == \
            [f"== migrate --database {alias}" for alias in ALIASES]
        assert {"django_migrations", "auth_user", "django_session"} <= table_names("default", tmp_path, url)
        for alias in ALIASES[1:]:  # every context holds its bus tables ...
            tables = table_names(alias, tmp_path, url)
            assert {"django_migrations", "eventbus_outboxmessage", "eventbus_inboxmessage"} <= tables, (alias, tables)
        # ... and its own models
        assert {"orders_order", "orders_productview"} <= table_names("orders", tmp_path, url)
        assert {"inventory_product", "inventory_reservation"} <= table_names("inventory", tmp_path, url)
        assert "payments_payment" in table_names("payments", tmp_path, url)
        assert "dashboard_logentry" in table_names("dashboard", tmp_path, url)
        again = manage("migrate_all", env=env)  # idempotent
        assert again.stdout.count("No migrations to apply.") == len(ALIASES)
    finally:
        if url:
            drop_databases(url)


def table_names(alias: str, tmp_path: Path, url: str | None) -> set[str]:
    if url is None:
        path = tmp_path / "data" / f"{alias}.sqlite3"
        with sqlite3.connect(path) as conn:
            return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(urlunsplit((parts.scheme, parts.netloc, f"{parts.path}_{alias}", parts.query, ""))) as conn:
        return {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def drop_databases(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, "")), autocommit=True) as conn:
        for alias in ALIASES:
            conn.execute(f'DROP DATABASE IF EXISTS "{parts.path.lstrip("/")}_{alias}" WITH (FORCE)')


def healthz(base: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_healthz_answers_503_naming_the_broker_and_channel_layer_when_redis_is_down(stack, live_db, daphne_url):
    status, body = healthz(daphne_url)
    assert (status, body["status"], body["failing"]) == (200, "ok", [])
    assert body["checks"] == {"database": "ok", "broker": "ok", "channel_layer": "ok", "restarts": "ok"}
    stack.redis.stop()
    try:
        status, body = healthz(daphne_url)
    finally:
        stack.redis.start()
    assert status == 503 and body["status"] == "fail"
    assert set(body["failing"]) == {"broker", "channel_layer"}
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("error: ")
    wait_for(lambda: healthz(daphne_url)[0] == 200, timeout=60, message="/healthz to answer 200 once Redis is back")


def test_the_sweep_resends_an_overdue_event_whose_message_vanished(stack, live_db):
    """A worker killed as it took a message can take it along: the row stays unconfirmed,
    the queue is empty, and after EVENTFLOW_REDELIVER_AFTER the sweep sends it again."""
    stack.stop_worker("payments")
    try:
        probe_id = new_probe_id()
        envelope = publish_probe(probe_id)
        broker = stack.broker()
        wait_for(lambda: broker.llen("payments") == 1, message="the delivery queued for payments")
        assert broker.delete("payments") == 1  # the message is gone, the broker's epoch is not
    finally:
        stack.start_worker("payments")
    row = OutboxMessage.objects.using("inventory").get(event_id=envelope.event_id)
    assert row.sent_at is not None and row.send_attempts == 1
    wait_for(lambda: probe_effects(probe_id) == 1, timeout=settings.EVENTFLOW_REDELIVER_AFTER + 60,
             message="the sweep to resend the overdue event")
    row.refresh_from_db(using="inventory")
    assert row.send_attempts == 2
    assert f"resending inventory {envelope.event_id} to payments (overdue)" in stack.log_text("sweep", since_start=False)
    wait_for(lambda: (row.refresh_from_db(using="inventory") or row.confirmed_at), message="the row confirmed")
    assert probe_effects(probe_id) == 1


def test_the_hybrid_stock_check_asks_inventory_and_the_order_goes_through(stack, live_db, client):
    from tests.integration.test_lab_modes import order_body, post_order

    skus = seed_products({"A": ("10.00", 5)})
    flags.set_flag("stock_check", "remote")
    try:
        response = post_order(client, order_body({skus["A"]: 4}, mode="event"))
    finally:
        flags.set_flag("stock_check", "local")
    assert response.status_code == 202, response.content
    order_id = response.json()["order_id"]
    order = Order.objects.using("orders").get(order_id=order_id)
    assert order.stock_check == "remote" and order.view_shortage == ""
    wait_for(lambda: Order.objects.using("orders").get(order_id=order_id).status == Order.CONFIRMED,
             message="the order confirmed after inventory's answer")
    assert_flow_invariants([order_id], set(skus.values()))


def test_anonymous_callers_may_not_flip_the_stock_check(stack, live_db):
    client = Client(enforce_csrf_checks=True)
    client.get("/orders/new/")
    token = client.cookies["csrftoken"].value
    before = flags.get_flag("stock_check")
    for value in ("remote", "local"):
        response = client.post("/api/flags/stock_check", data=json.dumps({"value": value}),
                               content_type="application/json", HTTP_X_CSRFTOKEN=token)
        assert response.status_code == 403
        assert response.json() == {"errors": {"user": ["staff only"]}}
    assert flags.get_flag("stock_check") == before
    assert client.get("/api/flags/stock_check").json()["value"] == before
