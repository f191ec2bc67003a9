"""The lab's controls over HTTP: staff only, CSRF on, real consumer control behind them."""


import pytest
from django.contrib.auth.models import User
from django.test import Client

from dashboard.models import ControlAction
from eventbus import control
from eventbus.models import DeadLetter
from tests.support.bus import new_probe_id, probe_effects, publish_probe
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]


def user(username: str, *, staff: bool) -> User:
    account, _ = User.objects.using("default").get_or_create(username=username, defaults={"is_staff": staff})
    account.is_staff = staff
    account.set_password("pw-for-tests-only")
    account.save(using="default")
    return account


def csrf_client(account: User | None) -> Client:
    client = Client(enforce_csrf_checks=True)
    if account is not None:
        client.force_login(account)
    return client


def csrf_token(client: Client) -> str:
    client.get("/orders/new/")  # a page with a form: it sets the csrftoken cookie
    return client.cookies["csrftoken"].value


def test_pause_and_resume_refuse_anonymous_non_staff_and_missing_csrf(stack, live_db):
    for account in (None, user("viewer", staff=False)):
        client = csrf_client(account)
        token = csrf_token(client)
        response = client.post("/api/contexts/inventory/pause", HTTP_X_CSRFTOKEN=token)
        assert response.status_code == 403
    staff = csrf_client(user("operator", staff=True))
    assert staff.post("/api/contexts/inventory/pause").status_code == 403  # no CSRF token
    assert control.consumer_status(max_age=0)["inventory"] == "online"
    assert not ControlAction.objects.using("dashboard").filter(user__in=["viewer", "operator"]).exists()


def test_staff_pause_and_resume_through_the_api(stack, live_db):
    client = csrf_client(user("operator", staff=True))
    token = csrf_token(client)
    response = client.post("/api/contexts/payments/pause", HTTP_X_CSRFTOKEN=token)
    try:
        assert response.status_code == 200, response.content
        assert response.json()["consumer"] == "paused"
        state = {c["name"]: c for c in client.get("/api/contexts/").json()["contexts"]}
        assert state["payments"]["consumer"] == "paused"
    finally:
        response = client.post("/api/contexts/payments/resume", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200 and response.json()["consumer"] == "online"
    assert client.post("/api/contexts/nowhere/pause", HTTP_X_CSRFTOKEN=token).status_code == 404
    actions = list(ControlAction.objects.using("dashboard").filter(user="operator").values_list("action", flat=True)[:2])
    assert actions == ["resume", "pause"]


def test_staff_retries_a_dead_letter_once_the_cause_is_fixed(stack, live_db):
    from tests.probe.handlers import broken_key

    probe_id = new_probe_id()
    stack.broker().set(broken_key(probe_id), 1)  # the handler has a bug for this event
    envelope = publish_probe(probe_id)
    letter = wait_for(lambda: DeadLetter.objects.using("payments").filter(event_id=envelope.event_id).first(),
                      message="the poison event dead-lettered after its tries")
    assert "hit a bug" in letter.error
    later = new_probe_id()
    publish_probe(later)
    wait_for(lambda: probe_effects(later) == 1, message="the rest flowing on")

    anonymous = csrf_client(None)
    assert anonymous.get("/api/dead-letters/").status_code == 403
    assert anonymous.post(f"/api/dead-letters/payments/{letter.id}/retry",
                          HTTP_X_CSRFTOKEN=csrf_token(anonymous)).status_code == 403
    staff = csrf_client(user("operator", staff=True))
    listed = staff.get("/api/dead-letters/").json()["dead_letters"]
    assert any(d["id"] == letter.id and d["context"] == "payments" and "hit a bug" in d["error"] for d in listed)

    stack.broker().delete(broken_key(probe_id))  # the fix is deployed
    response = staff.post(f"/api/dead-letters/payments/{letter.id}/retry", HTTP_X_CSRFTOKEN=csrf_token(staff))
    assert response.status_code == 200 and response.json()["retried"] == [letter.id]
    wait_for(lambda: probe_effects(probe_id) == 1, message="the retried event handled")
    assert staff.post(f"/api/dead-letters/payments/{letter.id}/retry",
                      HTTP_X_CSRFTOKEN=csrf_token(staff)).status_code == 404  # already retried
    from tests.support.bus import receipt_outcomes

    wait_for(lambda: receipt_outcomes(envelope.event_id, "payments")[-1:] == ["ok"],
             message="the dashboard log shows the retry succeeding")
