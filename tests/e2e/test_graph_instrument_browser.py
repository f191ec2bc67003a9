"""The graph as an instrument, in real Chromium against the real stack: edge figures, the side
panel of an edge, following one order, and time travel through the last minute with the local
views as they were. Screenshots land in test-artifacts/screenshots/."""

from __future__ import annotations

import time

import pytest

from tests.e2e.test_dashboard_browser import SHOTS, context, get_json, open_live, place_order, product  # noqa: F401
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live, pytest.mark.browser]

EDGE = "orders->inventory"


def test_edge_figures_side_panel_and_following_one_order(context, daphne_url, product):  # noqa: F811
    graph = open_live(context, f"{daphne_url}/")
    first, first_id = place_order(context, daphne_url, product, name="Ada Lovelace", email="ada@example.com")
    first.wait_for_selector("#order-status[data-status=CONFIRMED]")

    # Edge figures: the server's edges message, once a second, labels every edge when switched on.
    assert graph.locator("text.edge-metric:not(.hidden)").count() == 0
    graph.check("#edge-labels-toggle")
    graph.wait_for_function(
        """(key) => { const label = document.querySelector(`text.edge-metric[data-edge="${key}"]`);
                      return label && !label.classList.contains("hidden") && Number(label.dataset.eventsPerS) > 0
                             && label.dataset.p95Ms !== ""; }""", arg=EDGE)
    assert "/s" in graph.text_content(f'text.edge-metric[data-edge="{EDGE}"]')
    graph.wait_for_function("""() => Number(document.querySelector('#graph [data-node="inventory"] text.node-metric')
                                             .dataset.handledPerS) > 0""")
    api = get_json(f"{daphne_url}/api/edges/?window=60")
    served = next(e for e in api["edges"] if (e["producer"], e["subscriber"]) == ("orders", "inventory"))
    assert served["events_per_s"] > 0 and served["p50_ms"] is not None

    # Selecting the edge opens its panel: its event types with their rates, the series, the failures.
    graph.locator(f'path.edge-hit[data-edge="{EDGE}"]').dispatch_event("click")
    graph.wait_for_selector("#edge-panel:not([hidden]) tr[data-event-type]")
    graph.wait_for_selector("#edge-panel .panel-chart polyline, #edge-panel .panel-chart circle")
    types = graph.eval_on_selector_all("#edge-panel tr[data-event-type]", "(rows) => rows.map((r) => r.dataset.eventType)")
    assert set(types) <= {"OrderConfirmed", "OrderRejected"} and "OrderConfirmed" in types
    assert graph.get_attribute("#edge-panel", "data-selected") == EDGE
    SHOTS.mkdir(parents=True, exist_ok=True)
    graph.screenshot(path=str(SHOTS / "graph-edge-figures.png"))

    # Following one order: only its tokens are drawn, the rest dims. Its trace page links there.
    first.click("#follow-link")
    first.wait_for_selector("#graph.following")
    assert first.input_value("#follow-input") == first_id
    first.close()
    graph.fill("#follow-input", first_id)
    graph.click("#follow-form button[type=submit]")
    graph.wait_for_selector("#graph.following")
    assert f"follow={first_id}" in graph.url
    graph.evaluate("""() => { window.__drawn = new Set();
        const graph = window.eventflowGraph, original = graph.addEvent.bind(graph);
        graph.addEvent = (envelope, now) => { const before = graph.inFlight.size; original(envelope, now);
                                             if (graph.inFlight.size > before) window.__drawn.add(envelope.correlation_id); }; }""")
    other, other_id = place_order(context, daphne_url, product, name="Grace Hopper", email="grace@example.com")
    other.wait_for_selector("#order-status[data-status=CONFIRMED]")
    time.sleep(1.5)
    assert graph.evaluate("() => window.__drawn.size") == 0  # the other order drew nothing
    graph.click("#follow-clear")
    assert "following" not in (graph.get_attribute("#graph", "class") or "")
    assert not context.errors, context.errors
