"""Redis restarts under a running dashboard: the suite's own Daphne (not a fresh one), as
`make run` users face it. The open page must recover by itself (its Daphne's hub
subscribes again; what the page missed meanwhile it refetches by seq, or it reconnects),
show every event exactly once, and then receive new events live again (no refetch needed)."""

from __future__ import annotations


import pytest

from tests.support.browser import DELIVERED, SHOWN_ONCE, new_context, open_probe_log
from tests.support.bus import new_probe_id, publish_probe
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live, pytest.mark.browser]

def test_a_running_dashboard_survives_a_redis_restart(browser, stack, live_db, daphne):
    ctx = new_context(browser)
    daphne_pid = daphne.proc.pid
    try:
        page = open_probe_log(ctx, daphne.url)
        before = [publish_probe(new_probe_id()).event_id for _ in range(5)]
        page.wait_for_function(SHOWN_ONCE, arg=before)

        stack.redis.kill()
        during = [publish_probe(new_probe_id()).event_id for _ in range(5)]  # left in the outbox
        stack.redis.start()
        after = [publish_probe(new_probe_id()).event_id for _ in range(5)]
        everything = before + during + after

        # The same Daphne, the same page: it caught up without a reload.
        page.wait_for_function(SHOWN_ONCE, arg=everything, timeout=90_000)
        assert page.evaluate(DELIVERED, everything) == [1] * len(everything)
        assert daphne.proc.pid == daphne_pid and daphne.proc.poll() is None

        # Live again: a new event arrives through the channel layer, not through a refetch.
        page.wait_for_selector("#connection[data-state=live]", timeout=60_000)
        recoveries = page.evaluate("() => window.eventflowStream.stats.recoveries")
        fresh = publish_probe(new_probe_id()).event_id
        page.wait_for_function(SHOWN_ONCE, arg=[fresh], timeout=60_000)
        assert page.evaluate(DELIVERED, [fresh]) == [1]
        assert page.evaluate("() => window.eventflowStream.stats.recoveries") == recoveries
        assert not ctx.errors, ctx.errors
    finally:
        ctx.close()
