"""The dashboard in a real browser (headless Chromium through Playwright) against the
real stack: Daphne, Celery workers, the order flow. Screenshots land in
test-artifacts/screenshots/ for a person to look at."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from django.db import transaction

from contracts import Line, StockReleased
from eventbus import publish
from eventbus.privacy import mask_name
from tests.support.browser import COUNT_DELIVERIES, DELIVERED, DELIVERED_COUNT, get_json
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live, pytest.mark.browser]

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
XSS_NAME = "<img src=x onerror=alert(1)>"


@pytest.fixture
def product(stack, live_db, daphne_url):
    """A product of this test's own, created through inventory and seen by orders' view."""
    from inventory.services import product_create

    sku = f"E2E-{uuid.uuid4().hex[:10].upper()}"
    product_create(sku=sku, name="E2E widget", price="9.50", on_hand=50)
    wait_for(lambda: any(p["sku"] == sku for p in get_json(f"{daphne_url}/api/products/")["products"]),
             message=f"{sku} in orders' product view")
    return sku


def open_live(ctx, url: str):
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_selector("#connection[data-state=live]")
    return page


def place_order(ctx, daphne_url: str, sku: str, *, name: str, email: str) -> tuple:
    form = ctx.new_page()
    response = form.goto(f"{daphne_url}/orders/new/")
    assert response.status == 200, f"the order form answered {response.status}"
    form.fill(f'input[name="qty__{sku}"]', "2")
    form.fill('input[name="customer_name"]', name)
    form.fill('input[name="customer_email"]', email)
    form.select_option('select[name="payment_token"]', "tok_visa")
    form.click('#order-form button[type="submit"]')
    form.wait_for_url("**/orders/*/#token=*")  # the order's token rides in the fragment
    order_id = form.url.partition("#")[0].rstrip("/").rsplit("/", 1)[-1]
    return form, order_id


WATCH_DELIVERIES = """() => {
  window.__deliveries = [];
  new MutationObserver((records) => {
    for (const record of records) for (const node of record.addedNodes) {
      if (node.dataset) window.__deliveries.push([node.dataset.correlationId, node.dataset.context, node.dataset.outcome]);
    }
  }).observe(document.getElementById("deliveries"), {childList: true});
}"""


def test_an_order_from_the_form_propagates_on_the_graph_its_trace_and_the_views(context, daphne_url, product):
    graph = open_live(context, f"{daphne_url}/")
    graph.evaluate(WATCH_DELIVERIES)
    confirmed_before = int(graph.get_attribute('#panel-orders [data-status="CONFIRMED"]', "data-count") or 0)

    trace, order_id = place_order(context, daphne_url, product, name="Ada Lovelace", email="ada@example.com")

    # The trace page (the form redirected there) reaches CONFIRMED by itself.
    trace.wait_for_selector("#order-status[data-status=CONFIRMED]")
    assert trace.text_content("#order-id") == order_id
    assert trace.locator("#timeline tr.event-row").count() >= 5
    # Whoever placed it (the token) sees the customer in full; anyone else, masked.
    assert trace.text_content("[data-fact=customer]") == "Ada Lovelace <ada@example.com>"
    stranger = context.new_page()
    stranger.goto(f"{daphne_url}/orders/{order_id}/")
    stranger.wait_for_selector("#order-status[data-status=CONFIRMED]")
    assert stranger.text_content("[data-fact=customer]") == "A. L. <a***@example.com>"
    assert "ada@example.com" not in stranger.content() and "Lovelace" not in stranger.content()
    stranger.close()

    # The graph saw the flow's deliveries reach orders, inventory and payments.
    correlation_id = get_json(f"{daphne_url}/api/traces/{order_id}/")["correlation_ids"][0]
    graph.wait_for_function(
        """(cid) => ["orders", "inventory", "payments"].every(
             (ctx) => window.__deliveries.some(([c, x, o]) => c === cid && x === ctx && o === "ok"))""",
        arg=correlation_id)
    # ... and its local view panels moved: one more confirmed order, our SKU's stock down by 2 on both sides.
    graph.wait_for_function(
        "(before) => Number(document.querySelector('#panel-orders [data-status=\"CONFIRMED\"]').dataset.count) > before",
        arg=confirmed_before)
    row = graph.locator(f'#panel-stock tr[data-sku="{product}"]')
    row.wait_for()
    graph.wait_for_function(
        """(sku) => { const row = document.querySelector(`#panel-stock tr[data-sku="${sku}"]`);
                      return row && row.dataset.differs === "0" && row.children[2].textContent === "48"
                             && row.children[4].textContent === "48"; }""", arg=product)
    # Each node counts what its context handled (the queues message, once a second).
    graph.wait_for_function("""() => ["orders", "inventory", "payments"].every(
        (n) => Number(document.querySelector(`#graph [data-node="${n}"]`).dataset.handled) > 0)""")

    # A delivery that fails every try turns red: a dead receipt in the list, payments' failures counted.
    from tests.probe.events import ProbePinged

    failures = int(graph.get_attribute('#graph [data-node="payments"]', "data-failures"))
    with transaction.atomic(using="inventory"):
        doomed = publish(ProbePinged(probe_id=f"e2e-{uuid.uuid4()}", fail=True), context="inventory")
    graph.wait_for_function("(id) => window.__deliveries.some(([c, x, o]) => x === 'payments' && o === 'dead')",
                            arg=doomed.event_id)
    graph.wait_for_function(
        "(n) => Number(document.querySelector('#graph [data-node=\"payments\"]').dataset.failures) > n", arg=failures)
    assert "failing" in graph.get_attribute('#graph [data-node="payments"]', "class")

    # The stream's own recovery paths, in the page: a gap (as if frames were lost) is
    # refetched through after_seq; a dropped socket reconnects and shows it.
    stats = graph.evaluate("() => ({...window.eventflowStream.stats})")
    graph.evaluate("() => { window.eventflowStream.lastSeq -= 3; }")
    with transaction.atomic(using="inventory"):
        publish(StockReleased(order_id=str(uuid.uuid4()), lines=(Line(sku=product, qty=1),)), context="inventory")
    graph.wait_for_function("(n) => window.eventflowStream.stats.recoveries > n", arg=stats["recoveries"])
    graph.evaluate("() => window.eventflowStream.socket.close()")
    graph.wait_for_function("(n) => window.eventflowStream.stats.reconnects > n", arg=stats["reconnects"])
    graph.wait_for_selector("#connection[data-state=live]")
    last_seq = get_json(f"{daphne_url}/api/events/?limit=1")["last_seq"]
    graph.wait_for_function("(seq) => window.eventflowStream.lastSeq >= seq", arg=last_seq)
    assert not context.errors, context.errors


def test_hostile_customer_name_stays_text_everywhere_and_pages_are_captured(context, daphne_url, product):
    graph = open_live(context, f"{daphne_url}/")
    trace, order_id = place_order(context, daphne_url, product, name=XSS_NAME, email="mallory@example.com")
    SHOTS.mkdir(parents=True, exist_ok=True)
    graph.screenshot(path=str(SHOTS / "graph-in-flight.png"))  # the flow is still moving
    trace.wait_for_selector("#order-status[data-status=CONFIRMED]")
    assert XSS_NAME in trace.text_content("[data-fact=customer]")
    correlation_id = get_json(f"{daphne_url}/api/traces/{order_id}/")["correlation_ids"][0]

    log = open_live(context, f"{daphne_url}/events/?correlation_id={correlation_id}")
    log.wait_for_selector('#log-table tr[data-event-type="OrderRequested"]')
    log.wait_for_function("() => document.querySelectorAll('#log-table tbody tr').length >= 6")
    log.click('#log-table tr[data-event-type="OrderRequested"]')
    log.wait_for_selector("#detail-payload")
    assert mask_name(XSS_NAME) in log.text_content("#detail-payload")  # initials: the viewer is not staff
    assert "m***@example.com" in log.text_content("#detail-payload")
    assert log.locator("#detail ol.chain li").count() == 1  # OrderRequested starts the flow
    assert log.locator('#detail .links a[href^="/admin/orders/order/?q="]').count() == 1

    time.sleep(1.0)  # let the graph's last tokens land before the picture
    for page in (graph, log, trace):
        assert page.locator("main img").count() == 0
    assert context.dialogs == []
    assert not context.errors, context.errors

    graph.screenshot(path=str(SHOTS / "graph.png"), full_page=True)
    log.screenshot(path=str(SHOTS / "events.png"), full_page=True)
    trace.screenshot(path=str(SHOTS / "trace.png"), full_page=True)

    # Paused, the log counts what it does not show; resumed, it shows it.
    log.uncheck("#live")
    rows = log.locator("#log-table tbody tr").count()
    with transaction.atomic(using="inventory"):
        publish(StockReleased(order_id=str(uuid.uuid4()), lines=(Line(sku=product, qty=1),)),
                context="inventory", correlation_id=correlation_id)
    log.wait_for_selector('#log-status[data-missed="1"]')
    assert log.locator("#log-table tbody tr").count() == rows
    log.check("#live")
    log.wait_for_function("(n) => document.querySelectorAll('#log-table tbody tr').length === n + 1", arg=rows)
    assert log.get_attribute("#log-table tbody tr:first-child", "data-event-type") == "StockReleased"


BURST = 2000


def test_a_burst_keeps_the_pages_bounded_and_loses_no_event(context, stack, live_db, daphne_url):
    graph = open_live(context, f"{daphne_url}/")
    log = open_live(context, f"{daphne_url}/events/")
    correlation_id = str(uuid.uuid4())
    (SHOTS / "graph-burst.png").unlink(missing_ok=True)
    for page in (graph, log):
        page.evaluate(COUNT_DELIVERIES)

    # StockReleased goes to the dashboard alone: the burst loads the log and the pages, not the flow.
    published = []
    for start in range(0, BURST, 500):
        with transaction.atomic(using="inventory"):
            for i in range(start, start + 500):
                envelope = publish(StockReleased(order_id=str(uuid.uuid4()), lines=(Line(sku="E2E-BURST", qty=1),)),
                                   context="inventory", correlation_id=correlation_id)
                published.append(envelope.event_id)

    biggest = {"log": 0, "deliveries": 0, "dots": 0}
    deadline = time.monotonic() + 240  # a loaded 2-core machine logs ~30-100 entries a second
    while True:
        biggest["log"] = max(biggest["log"], log.locator("#log-table tbody tr").count())
        biggest["deliveries"] = max(biggest["deliveries"], graph.locator("#deliveries li").count())
        biggest["dots"] = max(biggest["dots"], graph.locator("#graph circle.dot").count())
        count = log.evaluate(DELIVERED_COUNT, published)  # what the page's stream received
        if count >= BURST:
            break
        if count >= BURST // 3 and not (SHOTS / "graph-burst.png").exists():
            SHOTS.mkdir(parents=True, exist_ok=True)
            graph.screenshot(path=str(SHOTS / "graph-burst.png"))
        assert time.monotonic() < deadline, f"the page's stream received only {count} of {BURST} events"
        time.sleep(1.0)
    # Every one of the 2,000 reached each page's stream exactly once (live or refetched by seq).
    for page in (log, graph):
        page.wait_for_function(f"(ids) => ids.every((id) => window.__delivered[id])", arg=published, timeout=60_000)
        assert page.evaluate(DELIVERED, published) == [1] * BURST

    # The pages caught up with the log and stayed bounded all along.
    last_seq = get_json(f"{daphne_url}/api/events/?limit=1")["last_seq"]
    for page in (graph, log):
        page.wait_for_function("(seq) => window.eventflowStream.lastSeq >= seq", arg=last_seq, timeout=60_000)
    assert biggest["log"] <= 200 and log.locator("#log-table tbody tr").count() == 200
    assert biggest["deliveries"] <= 14
    assert biggest["dots"] == graph.locator("#graph circle.dot").count()  # a fixed pool, never grown
    in_flight = graph.evaluate("() => [window.eventflowGraph.inFlight.size, window.eventflowGraph.early.size]")
    assert in_flight[0] <= 4000 and in_flight[1] <= 2000
    newest = log.get_attribute("#log-table tbody tr:first-child", "data-seq")
    assert int(newest) >= max(item["seq"] for item in get_json(
        f"{daphne_url}/api/events/?correlation_id={correlation_id}&kind=event&limit=1")["items"])
    assert context.dialogs == [] and not context.errors, context.errors
    stack.wait_idle(timeout=180)  # leave the stack as we found it: the burst's receipts drained too
