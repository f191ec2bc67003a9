"""What a person sees while `make run` heals itself (issue 17), in Chromium against the real
`python -m devstack.run`: the graph shows a restarting worker's context offline, then online;
an open page keeps streaming across restarts of both Redis servers, without a reload."""

from __future__ import annotations

import os
import signal

import pytest

from tests.support.run_stack import RunStack
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live, pytest.mark.browser]


@pytest.fixture(scope="module")
def run_stack(tmp_path_factory):
    stack = RunStack(tmp_path_factory.mktemp("run-heals-browser"))
    # A restart that waits 2 s stays visible for at least two of the page's 1 s ticks.
    stack.env["EVENTFLOW_RESTART_BACKOFF"] = "2"
    stack.start()
    yield stack
    stack.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(90_000)
    errors: list[str] = []
    page = ctx.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    ctx.close()
    assert not errors, errors


def test_graph_shows_a_restarting_worker_offline_then_online(run_stack, page):
    page.goto(run_stack.url("/"))
    node = '#graph [data-node="inventory"]'
    page.wait_for_selector(f'{node}[data-online="online"]')
    mark = len(run_stack.lines)
    os.kill(run_stack.child_pid("-Q inventory"), signal.SIGKILL)
    page.wait_for_selector(f'{node}[data-online="offline"]')
    run_stack.wait_line(r"^eventflow: inventory is back", start=mark, timeout=120)
    page.wait_for_selector(f'{node}[data-online="online"]')


def test_an_open_page_streams_on_across_both_redis_restarts(run_stack, page):
    page.goto(run_stack.url("/events/"))
    page.wait_for_selector("#connection[data-state=live]")
    sku = run_stack.in_stock_sku()
    before = run_stack.place_order(sku)
    page.wait_for_selector(f'#log-table tbody tr[data-event-type="OrderRequested"] a[href="/orders/{before}/"]')

    page.evaluate("() => { window.__sameDocument = true; }")  # gone if the page reloads
    mark = len(run_stack.lines)
    for name in ("channels-url", "redis-url"):
        os.kill(run_stack.redis(name).info("server")["process_id"], signal.SIGKILL)
    run_stack.wait_line(r"^eventflow: redis-channels is back", start=mark, timeout=120)
    run_stack.wait_line(r"^eventflow: redis is back", start=mark, timeout=120)
    wait_for(lambda: run_stack.healthz()[0] == 200, timeout=60, interval=0.5, message="/healthz 200 again")

    after = run_stack.place_order(sku)
    # The same page, never reloaded: it reconnected by itself and shows the later order decided.
    page.wait_for_selector("#connection[data-state=live]")
    page.wait_for_selector(f'#log-table tbody tr[data-event-type="OrderConfirmed"] a[href="/orders/{after}/"]')
    assert page.evaluate("() => window.__sameDocument === true")
