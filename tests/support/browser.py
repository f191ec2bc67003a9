"""What the browser tests share: scripts they run in a page (what its event stream delivered,
counted per event), a context that collects script errors, and a JSON fetch."""

import json
import urllib.request

# Wraps the page's stream (static/js/stream.js): every entry it hands the page, live or
# refetched by seq after a gap or a reconnect, is counted per event id in window.__delivered.
COUNT_DELIVERIES = """() => {
  const stream = window.eventflowStream, original = stream.onEntries;
  window.__delivered = {};
  stream.onEntries = (entries, meta) => {
    for (const entry of entries) if (entry.type === "event") {
      const id = entry.envelope.event_id;
      window.__delivered[id] = (window.__delivered[id] || 0) + 1;
    }
    return original(entries, meta);
  };
}"""

# How many times the stream delivered each of `ids` to the page.
DELIVERED = "(ids) => ids.map((id) => window.__delivered[id] || 0)"

# How many of `ids` the stream delivered at least once.
DELIVERED_COUNT = "(ids) => ids.filter((id) => window.__delivered[id]).length"

# Whether each of `ids` has exactly one row in the event log's table.
SHOWN_ONCE = """(ids) => ids.every((id) =>
  document.querySelectorAll(`#log-table tbody tr[data-event-id="${id}"]`).length === 1)"""


def new_context(browser, *, timeout: float = 30_000):
    """A browser context whose pages, including ones opened later, report script errors in
    `ctx.errors` and dialogs (dismissed) in `ctx.dialogs`."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    ctx.set_default_timeout(timeout)
    ctx.errors, ctx.dialogs = [], []

    def watch(page):
        page.on("dialog", lambda dialog: (ctx.dialogs.append(dialog.message), dialog.dismiss()))
        page.on("pageerror", lambda error: ctx.errors.append(str(error)))
    ctx.on("page", watch)
    return ctx


def open_probe_log(ctx, base_url: str):
    """A page of the event log filtered to ProbePinged, live, counting what its stream delivers."""
    page = ctx.new_page()
    page.goto(f"{base_url}/events/?event_type=ProbePinged")
    page.wait_for_selector("#connection[data-state=live]")
    page.evaluate(COUNT_DELIVERIES)
    return page


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)
