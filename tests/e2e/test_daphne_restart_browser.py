"""Fault suite: Daphne dies under an open /events/ page and comes back on the same port.

The page must show it lost the stream, reconnect by itself, and — through seq and
/api/events/?after_seq= — show every event published before, during and after the
outage exactly once. The test owns its Daphne, so the rest of the suite's server is
never touched."""

from __future__ import annotations


import pytest

from tests.support.browser import DELIVERED, SHOWN_ONCE, get_json, new_context, open_probe_log
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


def test_the_log_page_reconnects_after_daphne_restarts_and_shows_every_event_once(browser, stack, live_db, own_daphne):
    ctx = new_context(browser)
    try:
        page = open_probe_log(ctx, own_daphne.url)

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
        last_seq = get_json(f"{own_daphne.url}/api/events/?limit=1")["last_seq"]
        page.wait_for_function("(seq) => window.eventflowStream.lastSeq >= seq", arg=last_seq)
        # ... and neither the stream nor the table holds any event twice.
        delivered = page.evaluate(DELIVERED, everything)
        assert delivered == [1] * len(everything)
        seqs = page.evaluate("() => [...document.querySelectorAll('#log-table tbody tr')].map((tr) => Number(tr.dataset.seq))")
        assert len(seqs) == len(set(seqs)) and seqs == sorted(seqs, reverse=True)
        assert len(seqs) >= len(everything)
        assert not ctx.errors, ctx.errors
    finally:
        ctx.close()
