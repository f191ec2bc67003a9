"""The bus without workers: outbox in the caller's transaction, routing, topology."""

import pytest
from django.db import transaction

from eventbus import registry
from eventbus.models import OutboxMessage
from tests.support.bus import new_probe_id, publish_probe


@pytest.mark.django_db(databases="__all__", transaction=False)
def test_publish_writes_the_outbox_and_sends_nothing_before_commit(django_capture_on_commit_callbacks):
    probe_id = new_probe_id()
    with django_capture_on_commit_callbacks(using="inventory") as callbacks:
        envelope = publish_probe(probe_id)
    row = OutboxMessage.objects.using("inventory").get(event_id=envelope.event_id)
    assert row.sent_at is None
    assert row.envelope["payload"]["probe_id"] == probe_id
    assert len(callbacks) == 1  # the relay waits for the commit


@pytest.mark.django_db(databases="__all__")
def test_a_rolled_back_publish_leaves_nothing():
    probe_id = new_probe_id()
    with pytest.raises(RuntimeError):
        with transaction.atomic(using="inventory"):
            envelope = publish_probe(probe_id)
            raise RuntimeError("business rule failed")
    assert not OutboxMessage.objects.using("inventory").filter(event_id=envelope.event_id).exists()


def test_subscribers_come_from_the_registry():
    assert registry.subscribers_of("ProbePinged") == ["dashboard", "payments"]
    routes = registry.topology()["routes"]
    assert {"event_type": "ProbePinged", "producer": "inventory", "subscriber": "payments"} in routes


def test_subscribing_to_an_unknown_event_type_is_refused():
    from contracts import ContractError

    with pytest.raises(ContractError, match="OrderTeleported"):
        registry.subscribe("orders", {"OrderTeleported": lambda event, envelope: None})


def test_the_router_keeps_each_context_in_its_database():
    from config.routers import ContextRouter
    from dashboard.models import LogEntry

    router = ContextRouter()
    assert router.db_for_write(LogEntry) == "dashboard"
    assert router.allow_migrate("dashboard", "dashboard") is True
    assert router.allow_migrate("orders", "dashboard") is False
    assert router.allow_migrate("orders", "eventbus") is True
    assert router.allow_migrate("default", "eventbus") is False
    assert router.allow_migrate("default", "auth") is True
