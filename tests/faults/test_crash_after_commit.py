"""A process that commits an event and dies before its relay sends it loses nothing."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from eventbus.models import OutboxMessage
from tests.support.audit import audit_since, outbox_mark
from tests.support.bus import new_probe_id, probe_effects
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]
ROOT = Path(__file__).resolve().parents[2]

CRASHING_PUBLISHER = textwrap.dedent("""
    import os, signal, sys
    import django
    django.setup()
    from django.db import transaction
    from tests.support.bus import publish_probe

    with transaction.atomic(using="inventory"):
        # Registered before publish() registers the relay: it runs first and kills us,
        # after the commit and before anything reached the broker.
        transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL), using="inventory")
        envelope = publish_probe(sys.argv[1])
        print(envelope.event_id, flush=True)
""")


def test_killed_between_commit_and_send_the_sweep_delivers(stack, live_db):
    mark = outbox_mark()
    probe_id = new_probe_id()
    result = subprocess.run([sys.executable, "-c", CRASHING_PUBLISHER, probe_id], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == -9, result.stderr
    event_id = result.stdout.strip()
    row = OutboxMessage.objects.using("inventory").get(event_id=event_id)
    assert row.envelope["payload"]["probe_id"] == probe_id  # committed
    wait_for(lambda: probe_effects(probe_id) == 1, timeout=30, message="the sweep to deliver the orphaned event")
    row.refresh_from_db(using="inventory")
    assert row.sent_at is not None
    stack.wait_idle(timeout=30)
    assert probe_effects(probe_id) == 1
    audit_since(mark, probes=[probe_id]).assert_clean()
