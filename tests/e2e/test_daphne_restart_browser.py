"""Fault suite: Daphne dies under an open /events/ page and comes back on the same port.

The page must show it lost the stream, reconnect by itself, and — through seq and
/api/events/?after_seq= — show every event published before, during and after the
outage exactly once. The test owns its Daphne, so the rest of the suite's server is
never touched."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.support.browser import COUNT_DELIVERIES, DELIVERED
from tests.support.bus import new_probe_id, publish_probe
from tests.support.stack import Daphne
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live, pytest.mark.browser]

BEFORE, DURING, AFTER = 5, 60, 5  # DURING's entries (the event and payments' receipt each) outgrow the reconnect snapshot (the newest 100)


@pytest.fixture
def own_daphne(stack):
    """A Daphne of this test's own (killed and restarted here), on a port that stays its own."""
    server = Daphne(stack.logs_dir).start()
    yield server
    server.stop()


def logged(event_ids: list[str]) -> bool:
    """Every event is in the dashboard log with payments' receipt (read from the log's database:
    Daphne may be down)."""
    from dashboard.models import LogEntry

    entries = LogEntry.objects.using("dashboard").filter(event_id__in=event_ids)
    return (entries.filter(kind="event").count() == len(event_ids)
            and entries.filter(kind="receipt", context="payments", outcome="ok").count() >= len(event_ids))


SHOWN_ONCE = """(ids) => ids.every((id) =>
  document.querySelectorAll(`#log-table tbody tr[data-event-id="${id}"]`).length === 1)"""


def test_the_log_page_reconnects_after_daphne_restarts_and_shows_every_event_once(browser, stack, live_db, own_daphne):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(30_000)
    errors: list[str] = []
    try:
        page = ctx.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{own_daphne.url}/events/?event_type=ProbePinged")
        page.wait_for_selector("#connection[data-state=live]")
        page.evaluate(COUNT_DELIVERIES)

        before = [publish_probe(new_probe_id()).event_id for _ in range(BEFORE)]
        page.wait_for_function(SHOWN_ONCE, arg=before)
        stats = page.evaluate("() => ({...window.eventflowStream.stats})")

        port = own_daphne.port
        own_daphne.kill()
        page.wait_for_selector("#connection[data-state=offline]")
        during = [publish_probe(new_probe_id()).event_id for _ in range(DURING)]
        wait_for(lambda: logged(before + during), timeout=90, message="the outage's events logged")

        own_daphne.start()
        assert own_daphne.port == port and own_daphne.url.endswith(f":{port}")  # the page's address still works
        page.wait_for_function("(n) => window.eventflowStream.stats.reconnects > n", arg=stats["reconnects"],
                               timeout=60_000)
        page.wait_for_selector("#connection[data-state=live]", timeout=60_000)

        after = [publish_probe(new_probe_id()).event_id for _ in range(AFTER)]
        everything = before + during + after
        page.wait_for_function(SHOWN_ONCE, arg=everything, timeout=60_000)
        wait_for(lambda: logged(everything), timeout=60, message="every event logged")

        # The gap was filled from the log by seq (the snapshot holds only the newest entries) ...
        assert page.evaluate("() => window.eventflowStream.stats.recoveries") > stats["recoveries"]
        with urllib.request.urlopen(f"{own_daphne.url}/api/events/?limit=1", timeout=10) as response:
            last_seq = json.load(response)["last_seq"]
        page.wait_for_function("(seq) => window.eventflowStream.lastSeq >= seq", arg=last_seq)
        # ... and neither the stream nor the table holds any event twice.
        delivered = page.evaluate(DELIVERED, everything)
        assert delivered == [1] * len(everything)
        seqs = page.evaluate("() => [...document.querySelectorAll('#log-table tbody tr')].map((tr) => Number(tr.dataset.seq))")
        assert len(seqs) == len(set(seqs)) and seqs == sorted(seqs, reverse=True)
        assert len(seqs) >= len(everything)
        assert not errors, errors
    finally:
        ctx.close()
