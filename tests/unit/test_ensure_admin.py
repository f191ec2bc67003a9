"""`manage.py ensure_admin`, as the README promises it: the first run creates `admin` with a
generated password printed once (or EVENTFLOW_ADMIN_PASSWORD); later runs keep its password
unless EVENTFLOW_ADMIN_PASSWORD says otherwise, and make it an active superuser again."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

pytestmark = pytest.mark.django_db(databases=["default"])


def ensure_admin() -> str:
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def admin():
    return get_user_model().objects.get(username="admin")


def test_first_run_generates_a_password_printed_once_and_later_runs_keep_it(monkeypatch):
    monkeypatch.delenv("EVENTFLOW_ADMIN_PASSWORD", raising=False)
    get_user_model().objects.filter(username="admin").delete()
    first = ensure_admin()
    password = re.search(r"Created superuser 'admin' with password:\s+(\S+)", first).group(1)
    user = admin()
    assert user.is_superuser and user.is_staff and user.is_active
    assert user.check_password(password)

    second = ensure_admin()
    assert password not in second and "password unchanged" in second
    assert admin().check_password(password)
    assert get_user_model().objects.filter(username="admin").count() == 1


def test_the_environment_sets_the_password_and_restores_a_demoted_admin(monkeypatch):
    get_user_model().objects.filter(username="admin").delete()
    monkeypatch.setenv("EVENTFLOW_ADMIN_PASSWORD", "chosen-password-1")
    out = ensure_admin()
    assert "chosen-password-1" not in out and "from EVENTFLOW_ADMIN_PASSWORD" in out
    assert admin().check_password("chosen-password-1")

    user = admin()
    user.is_superuser = user.is_staff = user.is_active = False
    user.save()
    monkeypatch.setenv("EVENTFLOW_ADMIN_PASSWORD", "chosen-password-2")
    out = ensure_admin()
    assert "made an active superuser" in out and "password set from EVENTFLOW_ADMIN_PASSWORD" in out
    user = admin()
    assert user.is_superuser and user.is_staff and user.is_active
    assert user.check_password("chosen-password-2") and not user.check_password("chosen-password-1")
