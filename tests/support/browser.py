"""Scripts the browser tests run in a page: what its event stream delivered, counted per event."""

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
