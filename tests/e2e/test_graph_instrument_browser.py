"""The graph as an instrument, in real Chromium against the real stack: edge figures, the side
panel of an edge, following one order, and time travel through the last minute with the local
views as they were. Screenshots land in test-artifacts/screenshots/."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.e2e.test_dashboard_browser import SHOTS, open_live, place_order, product  # noqa: F401
from tests.support.browser import get_json
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


WATCH_STOCK_ROW = """(sku) => {
  window.__rows = [];
  const status = document.getElementById("timebar-status");
  new MutationObserver(() => {
    const row = document.querySelector(`#panel-stock tr[data-sku="${sku}"]`);
    if (!row || status.dataset.mode !== "replay") return;
    window.__rows.push([Number(status.dataset.seq), row.dataset.differs]);
    if (row.dataset.differs === "1" && !window.__paused) {  // hold the first lag for the picture
      window.__paused = true;
      window.eventflowTimeTravel.setPlaying(false);
    }
  }).observe(document.getElementById("panel-stock"), {childList: true, subtree: true});
}"""


# The seqs of the entries the time bar hands the graph while replaying, in the order handed.
RECORD_REPLAYED = """() => {
  window.__replayed = [];
  const graph = window.eventflowGraph, original = graph.addEntries.bind(graph);
  if (graph.recording) return;  // wrapped once; each call starts a new record
  graph.recording = true;
  graph.addEntries = (entries) => {
    if (window.eventflowTimeTravel.active) window.__replayed.push(...entries.map((entry) => entry.seq));
    return original(entries);
  };
}"""

# A moment (ms since the epoch) as a datetime-local input's value, in the page's time zone.
LOCAL_INPUT = """(ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 19)"""


def in_seq_order(seqs: list[int]) -> bool:
    return bool(seqs) and all(a < b for a, b in zip(seqs, seqs[1:]))


def place_by_api(daphne_url: str, sku: str) -> str:
    body = {"customer": {"name": "Grace Hopper", "email": "grace@example.com"}, "lines": [{"sku": sku, "qty": 2}],
            "payment_token": "tok_visa", "mode": "event"}
    request = urllib.request.Request(f"{daphne_url}/api/orders/", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["order_id"]


def views_lag(views: dict, sku: str) -> bool:
    copy = views.get("orders", {}).get("products", {}).get(sku)
    truth = views.get("inventory", {}).get("stock", {}).get(sku)
    return bool(copy and truth) and str(copy["available"]) != str(truth["available"])


def test_time_travel_replays_the_last_minute_with_the_views_as_they_were(context, stack, live_db, daphne_url, product):  # noqa: F811
    from dashboard import replay
    from dashboard.models import ContextView
    from eventbus import control
    from inventory.services import stock_adjust

    began_ms = time.time() * 1000
    graph = open_live(context, f"{daphne_url}/")
    graph.check("#edge-labels-toggle")
    place_order(context, daphne_url, product, name="Ada Lovelace", email="ada@example.com")[0].close()

    # A real lag: orders' consumer paused while inventory's stock changes, then resumed.
    def available(ctx: str, section: str):
        view = ContextView.objects.using("dashboard").filter(context=ctx).values_list("view", flat=True).first() or {}
        row = view.get(section, {}).get(product)
        return row and row["available"]

    wait_for(lambda: available("orders", "products") == available("inventory", "stock") == 48, timeout=60,
             message="both views at 48")
    control.pause("orders")
    try:  # inventory reserves for the order at once; orders learns it only once resumed
        order_id = place_by_api(daphne_url, product)
        wait_for(lambda: available("inventory", "stock") == 46, timeout=60, message="inventory's view at 46")
        time.sleep(1.5)
        assert available("orders", "products") == 48  # orders lags
    finally:
        control.resume("orders")
    wait_for(lambda: available("orders", "products") == 46, timeout=60, message="orders' view caught up")
    wait_for(lambda: get_json(f"{daphne_url}/api/traces/{order_id}/")["state"]["status"] == "CONFIRMED", timeout=60,
             message="the order confirmed")
    graph.wait_for_function(f"""() => document.querySelector('#panel-stock tr[data-sku="{product}"]').dataset.differs === "0" """)

    time.sleep(1.5)  # the catch-up well inside the window (it ends half a second before the click)

    # Replay the last minute at 4x.
    graph.evaluate(WATCH_STOCK_ROW, product)
    graph.evaluate(RECORD_REPLAYED)
    graph.click("[data-speed='4']")
    graph.click("#replay-last-minute")
    graph.wait_for_selector("#timebar-status[data-mode=replay]")
    assert "replaying" in graph.get_attribute("body", "class")
    print(f"\nreplay of the last minute started in {graph.evaluate('() => window.eventflowTimeTravel.stats.startMs')} ms")
    graph.wait_for_function("() => window.__paused", timeout=60_000)
    assert graph.get_attribute("#timebar-status", "data-playing") == "0"
    assert graph.get_attribute(f'#panel-stock tr[data-sku="{product}"]', "data-differs") == "1"
    SHOTS.mkdir(parents=True, exist_ok=True)
    graph.screenshot(path=str(SHOTS / "graph-time-travel.png"), full_page=True)
    before = int(graph.get_attribute("#timebar-status", "data-seq"))
    graph.click("#replay-step")  # one entry on, still paused
    assert int(graph.get_attribute("#timebar-status", "data-seq")) > before
    assert graph.get_attribute("#timebar-status", "data-playing") == "0"
    for speed in ("16", "1", "16"):  # the speed buttons set the replay clock's speed
        graph.click(f"[data-speed='{speed}']")
        assert graph.get_attribute("#timebar-status", "data-speed") == speed
        assert graph.eval_on_selector_all("[data-speed].active", "(buttons) => buttons.map((b) => b.dataset.speed)") == [speed]
    graph.click("#replay-play")
    graph.wait_for_selector("#timebar-status[data-done='1']", timeout=90_000)
    replayed = graph.evaluate("() => window.__replayed")
    assert in_seq_order(replayed), replayed  # the tokens were handed to the graph in seq order
    rows = graph.evaluate("() => window.__rows")
    lagging = [seq for seq, differs in rows if differs == "1"]
    # The panel showed orders' view lagging inventory at moments where the log says it did ...
    assert lagging and all(views_lag(replay.views_at(seq), product) for seq in lagging), lagging
    # ... and catching up afterwards, as the log says.
    caught_up = [seq for seq, differs in rows if differs == "0" and seq > max(lagging)]
    assert caught_up and not views_lag(replay.views_at(caught_up[0]), product), rows
    # The edge figures of the replayed moment: the order's deliveries on orders -> inventory.
    assert graph.evaluate("() => window.eventflowTimeTravel.frames.some((f) => f.edges.some((e) => e.producer === 'orders' && e.subscriber === 'inventory' && e.count > 0))")

    # Back to live without a reload: the panels follow live changes again.
    graph.evaluate("() => { window.__loaded = performance.timeOrigin; }")
    graph.click("#replay-leave")
    graph.wait_for_selector("#timebar-status[data-mode=live]")
    stock_adjust(sku=product, delta=1, reason="e2e: live again")
    graph.wait_for_function(f"""() => document.querySelector('#panel-stock tr[data-sku="{product}"]').children[2].textContent === "47" """)
    assert graph.evaluate("() => window.__loaded === performance.timeOrigin")  # the same document

    # A window can also be dragged on the events/s strip (its newest minute: the log began with this test).
    box = graph.locator(".timebar-strip").bounding_box()
    graph.mouse.move(box["x"] + box["width"] * 0.8, box["y"] + box["height"] / 2)
    graph.mouse.down()
    graph.mouse.move(box["x"] + box["width"] * 0.99, box["y"] + box["height"] / 2, steps=5)
    graph.mouse.up()
    graph.wait_for_selector("#timebar-status[data-mode=replay]")
    graph.click("#replay-leave")
    graph.wait_for_selector("#timebar-status[data-mode=live]")

    # Any window the log retains, older than the strip too, is picked with the from/to inputs.
    graph.wait_for_function("() => document.getElementById('timebar-retained').textContent.includes('holds entries from')")

    def pick(start_ms: float, end_ms: float) -> None:
        graph.fill("#replay-start", graph.evaluate(LOCAL_INPUT, start_ms))
        graph.fill("#replay-end", graph.evaluate(LOCAL_INPUT, end_ms))
        graph.click("#replay-window")

    now_ms = time.time() * 1000
    pick(now_ms - 30_000, now_ms - 60_000)  # reversed: the API's 400, shown
    graph.wait_for_function("() => document.getElementById('timebar-problem').textContent.includes('end must be after start')")
    pick(1577836800000, 1577836860000)  # 2020-01-01: long gone from the log
    graph.wait_for_function("() => document.getElementById('timebar-problem').textContent.includes('holds nothing before')")
    assert graph.get_attribute("#timebar-status", "data-mode") == "live"
    graph.evaluate(RECORD_REPLAYED)
    pick(began_ms - 2000, time.time() * 1000)  # this test's whole window, the order and the lag in it
    graph.wait_for_selector("#timebar-status[data-mode=replay]")
    assert graph.text_content("#timebar-problem") == ""
    graph.click("[data-speed='16']")
    graph.wait_for_selector("#timebar-status[data-done='1']", timeout=90_000)
    replayed = graph.evaluate("() => window.__replayed")
    assert in_seq_order(replayed) and max(replayed) >= max(seq for seq, _ in rows), replayed
    graph.click("#replay-leave")
    graph.wait_for_selector("#timebar-status[data-mode=live]")
    assert not context.errors, context.errors


def test_replay_of_a_busy_five_minutes_is_measured(context, live_db, daphne_url):
    """20,000 entries in the last 5 minutes (written straight into the log): how long the page
    takes to start replaying them and how smoothly it plays at 16x. Printed, not asserted."""
    import uuid
    from datetime import datetime, timedelta

    from django.utils import timezone

    from dashboard.models import LogEntry

    now = timezone.now()
    correlation = str(uuid.uuid4())
    rows = []
    for i in range(20_000):
        event_id = str(uuid.uuid4())
        at = now - timedelta(seconds=245) + timedelta(milliseconds=i * 12)
        rows.append(LogEntry(entry_key=f"event:{event_id}", kind=LogEntry.EVENT, event_id=event_id,
                             event_type="StockReleased", producer="inventory", context="inventory",
                             correlation_id=correlation, data={
                                 "event_id": event_id, "event_type": "StockReleased", "version": 1,
                                 "producer": "inventory", "correlation_id": correlation, "causation_id": None,
                                 "occurred_at": at.isoformat(), "payload": {"order_id": str(uuid.uuid4()),
                                                                            "lines": [{"sku": "E2E-BUSY", "qty": 1}]}},
                             delivery={"finished_at": at.isoformat(), "attempt": 1}))
    created = LogEntry.objects.using("dashboard").bulk_create(rows, batch_size=2000)
    # auto_now_add stamped them all now: spread them over the last 4 minutes, as a busy log is.
    base = timezone.now() - timedelta(seconds=245)
    for i, row in enumerate(created):
        row.recorded_at = base + timedelta(milliseconds=i * 12)
    LogEntry.objects.using("dashboard").bulk_update(created, ["recorded_at"], batch_size=2000)

    graph = open_live(context, f"{daphne_url}/")
    started = graph.evaluate("""async () => {
      const travel = window.eventflowTimeTravel, end = Date.now() - 500, asked = performance.now();
      travel.setSpeed(16);
      await travel.replay(end - 300_000, end);
      return {startMs: travel.stats.startMs, firstPage: travel.entries.length, since: performance.now() - asked};
    }""")
    graph.wait_for_function("() => window.eventflowTimeTravel.complete", timeout=120_000)
    frames = graph.evaluate("""() => new Promise((resolve) => {
      let n = 0, worst = 0, last = performance.now();
      const started = last;
      const count = (now) => { n += 1; worst = Math.max(worst, now - last); last = now;
        if (now - started < 3000) requestAnimationFrame(count); else resolve({fps: n / ((now - started) / 1000), worstMs: worst}); };
      requestAnimationFrame(count);
    })""")
    total = graph.evaluate("() => window.eventflowTimeTravel.entries.length")
    print(f"\nreplay of 5 minutes with {total} entries: started in {started['startMs']} ms "
          f"(first page {started['firstPage']} entries); playing at 16x: {frames['fps']:.0f} frames/s, "
          f"longest frame {frames['worstMs']:.0f} ms")
    graph.click("#replay-leave")
    # Out of the log again: their seqs are the newest but their times are not (seq_at assumes both grow).
    LogEntry.objects.using("dashboard").filter(correlation_id=correlation).delete()
    assert total >= 20_000
    assert not context.errors, context.errors
