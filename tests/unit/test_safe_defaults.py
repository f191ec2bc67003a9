"""Settings that are safe by default: debug off, the development secret key refused off
loopback, documented limits; static files still served with debug off."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOW = ("import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.DEBUG, s.EVENTFLOW_ORDER_RATE_LIMIT, s.EVENTFLOW_MAX_BODY_BYTES]))")
UNSET = ("DJANGO_DEBUG", "DJANGO_SECRET_KEY", "EVENTFLOW_BIND", "EVENTFLOW_ORDER_RATE_LIMIT", "EVENTFLOW_MAX_BODY_BYTES")


def settings_in_a_new_process(**env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in UNSET}
    return subprocess.run([sys.executable, "-c", SHOW], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=60)


def test_debug_is_off_and_the_limits_are_the_documented_ones_unless_asked():
    result = settings_in_a_new_process()
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [False, "60/60", 262144]
    asked = settings_in_a_new_process(DJANGO_DEBUG="1")
    assert json.loads(asked.stdout.splitlines()[-1])[0] is True


@pytest.mark.parametrize("bind", ["0.0.0.0", "::", "192.0.2.10", "example.org"])
def test_the_development_secret_key_is_refused_off_loopback_with_debug_off(bind):
    result = settings_in_a_new_process(EVENTFLOW_BIND=bind)
    assert result.returncode != 0
    assert "refusing to start" in result.stderr and f"EVENTFLOW_BIND={bind}" in result.stderr
    assert "DJANGO_SECRET_KEY" in result.stderr


@pytest.mark.parametrize("env", [
    {"EVENTFLOW_BIND": "127.0.0.1"}, {"EVENTFLOW_BIND": "::1"}, {"EVENTFLOW_BIND": "localhost"},
    {"EVENTFLOW_BIND": "0.0.0.0", "DJANGO_SECRET_KEY": "a-real-secret-" + "x" * 40},
    {"EVENTFLOW_BIND": "0.0.0.0", "DJANGO_DEBUG": "1"},
])
def test_loopback_a_real_key_or_debug_on_start(env):
    result = settings_in_a_new_process(**env)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("rate", ["abc", "5/", "0/60", "3/0", "-1/60"])
def test_a_malformed_rate_limit_is_refused_at_startup(rate):
    result = settings_in_a_new_process(EVENTFLOW_ORDER_RATE_LIMIT=rate)
    assert result.returncode != 0 and "EVENTFLOW_ORDER_RATE_LIMIT" in result.stderr


@pytest.mark.django_db(databases="__all__")
def test_static_files_are_served_with_debug_off(client, settings):
    """whitenoise, debug off: pages name hashed files, served gzip-compressed and cached for good;
    the modules a hashed script imports are hashed too, so one page never mixes two builds."""
    assert settings.DEBUG is False
    page = client.get("/").content.decode()
    css = re.search(r'href="(/static/css/eventflow\.[0-9a-f]{12}\.css)"', page)
    script = re.search(r'src="(/static/js/graph-page\.[0-9a-f]{12}\.js)"', page)
    assert css and script, page
    response = client.get(css.group(1), HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert "immutable" in response["Cache-Control"]
    source = b"".join(client.get(script.group(1)).streaming_content).decode()
    imports = re.findall(r'from "\./([^"]+)"', source)
    assert imports and all(re.fullmatch(r"[a-z-]+\.[0-9a-f]{12}\.js", name) for name in imports), imports
    for name in imports:
        assert client.get(f"/static/js/{name}").status_code == 200, name
    assert client.get("/static/js/no-such-file.js").status_code == 404


def test_make_run_refuses_a_public_bind_with_the_development_key_and_says_which(tmp_path):
    from devstack.redis import free_port

    env = {k: v for k, v in os.environ.items() if k not in (*UNSET, "REDIS_URL", "DATABASE_URL")}
    env.update(EVENTFLOW_BIND="0.0.0.0", EVENTFLOW_DATA_DIR=str(tmp_path / "data"), PORT=str(free_port()))
    result = subprocess.run([sys.executable, "-m", "devstack.run"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "refusing to start" in output and "EVENTFLOW_BIND=0.0.0.0 is not loopback-only" in output
    assert "Dashboard:" not in output
