// `/events/`: the log, newest first, filtered, live unless paused; a click shows one event.

import {EventStream, showConnection} from "./stream.js";
import {clear, formatMs, getJSON, h, msBetween, pretty, shortId, timeOf} from "./dom.js";

const MAX_ROWS = 200;
const table = document.getElementById("log-table");
const tbody = table.querySelector("tbody");
const form = document.getElementById("filters");
const liveSwitch = document.getElementById("live");
const status = document.getElementById("log-status");
const detail = document.getElementById("detail");
const rows = new Map(); // event_id -> {tr, chips, receipts: Map(context -> receipt)}
let missed = 0;
let selected = null;
let loading = null;

/** The order's trace page: the template reverses dashboard:order-trace for a placeholder id. */
function traceUrl(orderId) {
  return table.dataset.orderTraceUrl.replace(table.dataset.orderPlaceholder, encodeURIComponent(orderId));
}

function filters() {
  const data = new FormData(form);
  return Object.fromEntries(["event_type", "producer", "correlation_id", "q"].map((k) => [k, (data.get(k) || "").trim()]));
}

function matches(entry, f) {
  const env = entry.envelope || entry.receipt || {};
  if (f.event_type && env.event_type !== f.event_type) return false;
  if (f.producer && env.producer !== f.producer) return false;
  if (f.correlation_id && env.correlation_id !== f.correlation_id) return false;
  if (f.q && !JSON.stringify(env).toLowerCase().includes(f.q.toLowerCase())) return false;
  return true;
}

function query(extra) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries({...filters(), ...extra})) if (v !== "" && v !== undefined) params.set(k, v);
  return params.toString();
}

function renderChips(row) {
  clear(row.chips);
  for (const [context, receipt] of [...row.receipts].sort()) {
    row.chips.append(h("span", {class: `chip outcome-${receipt.outcome}`, title: receipt.error || receipt.outcome,
                                dataset: {context, outcome: receipt.outcome}}, `${context} ${receipt.outcome}`));
  }
}

function makeRow(entry) {
  const env = entry.envelope;
  const chips = h("div", {class: "chips"});
  const orderId = env.payload && typeof env.payload.order_id === "string" ? env.payload.order_id : "";
  const tr = h("tr", {dataset: {seq: String(entry.seq), eventId: env.event_id, eventType: env.event_type}},
    h("td", {class: "num mono"}, entry.seq),
    h("td", {class: "mono"}, timeOf(env.occurred_at)),
    h("td", {}, env.event_type),
    h("td", {}, env.producer),
    h("td", {class: "mono"}, orderId ? h("a", {href: traceUrl(orderId), onclick: (e) => e.stopPropagation()}, shortId(orderId)) : ""),
    h("td", {class: "mono", title: env.correlation_id}, shortId(env.correlation_id)),
    h("td", {}, chips));
  tr.addEventListener("click", () => showDetail(env.event_id));
  const row = {tr, chips, receipts: new Map(), seq: entry.seq};
  rows.set(env.event_id, row);
  if (env.event_id === selected) tr.classList.add("selected");
  return row;
}

function addReceipt(receipt) {
  const row = rows.get(receipt.event_id);
  if (!row) return false;
  const known = row.receipts.get(receipt.context);
  if (known && known.outcome !== "failed" && receipt.outcome === "failed") return false;
  row.receipts.set(receipt.context, receipt);
  return true;
}

function trim() {
  while (tbody.children.length > MAX_ROWS) {
    const last = tbody.lastElementChild;
    rows.delete(last.dataset.eventId);
    last.remove();
  }
}

function showStatus() {
  const live = liveSwitch.checked;
  status.textContent = live ? `${rows.size} shown (newest ${MAX_ROWS} at most)` : `paused · ${missed} new event(s) not shown`;
  status.dataset.missed = String(missed);
}

async function reload() {
  const token = Symbol("load");
  loading = token;
  let events, receipts;
  try {
    [events, receipts] = await Promise.all([
      getJSON(`/api/events/?${query({kind: "event", limit: MAX_ROWS})}`),
      getJSON(`/api/events/?${query({kind: "receipt", limit: 1000, q: ""})}`),
    ]);
  } catch (error) {
    if (loading === token) loading = null;
    status.textContent = `could not load the log: ${error.message}`;
    return;
  }
  if (loading !== token) return;
  clear(tbody);
  rows.clear();
  const fragment = document.createDocumentFragment();
  for (const entry of events.items.slice().reverse()) fragment.append(makeRow(entry).tr);
  tbody.append(fragment);
  for (const entry of receipts.items) addReceipt(entry.receipt);
  for (const row of rows.values()) renderChips(row);
  missed = 0;
  loading = null;
  showStatus();
}

function onEntries(entries) {
  const f = filters();
  const fresh = [];
  const topSeq = tbody.firstElementChild ? Number(tbody.firstElementChild.dataset.seq) : 0;
  const touched = new Set();
  for (const entry of entries) {
    if (entry.type === "event") {
      if (!matches(entry, f)) continue;
      if (!liveSwitch.checked || loading) { missed += 1; continue; }
      if (rows.has(entry.envelope.event_id) || entry.seq <= topSeq) continue;
      fresh.push(entry);
    } else if (entry.type === "receipt" && entry.receipt) {
      if (!liveSwitch.checked) continue;
      if (addReceipt(entry.receipt)) touched.add(entry.receipt.event_id);
    }
  }
  if (fresh.length) {
    // Only the newest MAX_ROWS of a burst are worth building.
    const fragment = document.createDocumentFragment();
    for (const entry of fresh.slice(-MAX_ROWS).reverse()) {
      const row = makeRow(entry);
      row.tr.classList.add("fresh");
      fragment.append(row.tr);
    }
    tbody.prepend(fragment);
    trim();
  }
  for (const id of touched) if (rows.has(id)) renderChips(rows.get(id));
  showStatus();
}

// --- one event's detail -----------------------------------------------------------
function section(title, ...children) {
  return [h("h3", {}, title), ...children];
}

async function showDetail(eventId) {
  selected = eventId;
  for (const row of rows.values()) row.tr.classList.toggle("selected", row.tr.dataset.eventId === eventId);
  clear(detail).append(h("p", {class: "muted"}, "loading…"));
  let data;
  try {
    data = await getJSON(`/api/events/${encodeURIComponent(eventId)}/`);
  } catch (error) {
    clear(detail).append(h("p", {class: "reason"}, `Could not load the event: ${error.message}`));
    return;
  }
  if (selected !== eventId) return;
  const env = data.event.envelope;
  const {payload, ...envelope} = env;
  const orderId = typeof payload?.order_id === "string" ? payload.order_id : "";
  const receipts = h("table", {class: "grid"},
    h("thead", {}, h("tr", {}, h("th", {}, "context"), h("th", {}, "outcome"), h("th", {class: "num"}, "try"),
      h("th", {class: "num"}, "published → received"), h("th", {class: "num"}, "→ handled"))),
    h("tbody", {}, data.receipts.map(({receipt}) => h("tr", {dataset: {context: receipt.context, outcome: receipt.outcome}},
      h("td", {}, receipt.context),
      h("td", {}, h("span", {class: `badge outcome-${receipt.outcome}`}, receipt.outcome), receipt.error ? h("div", {class: "reason small"}, receipt.error) : ""),
      h("td", {class: "num"}, receipt.attempt),
      h("td", {class: "num"}, formatMs(msBetween(receipt.published_at, receipt.received_at))),
      h("td", {class: "num"}, formatMs(msBetween(receipt.received_at, receipt.finished_at)))))));
  const chain = h("ol", {class: "chain"}, data.chain.map((entry) => {
    const e = entry.envelope;
    const current = e.event_id === eventId;
    return h("li", {class: current ? "current" : "", dataset: {eventId: e.event_id}},
      current ? `${e.event_type} (this event)` : h("a", {href: "#", onclick: (ev) => { ev.preventDefault(); showDetail(e.event_id); }}, e.event_type),
      h("span", {class: "muted small"}, ` by ${e.producer} · ${shortId(e.event_id)}`));
  }));
  const caused = data.caused.length
    ? h("ul", {class: "chain"}, data.caused.map((entry) => h("li", {},
        h("a", {href: "#", onclick: (ev) => { ev.preventDefault(); showDetail(entry.envelope.event_id); }}, entry.envelope.event_type),
        h("span", {class: "muted small"}, ` by ${entry.envelope.producer}`))))
    : h("p", {class: "muted small"}, "nothing (yet)");
  const links = h("div", {class: "links"},
    orderId ? h("a", {href: traceUrl(orderId)}, "Order trace") : "",
    h("a", {href: `/events/?correlation_id=${encodeURIComponent(env.correlation_id)}`}, "Same flow"),
    data.links.map((link) => h("a", {href: link.href}, link.label)));
  clear(detail).append(
    h("div", {class: "card-head"}, h("h1", {}, env.event_type), h("span", {class: "muted mono"}, `seq ${data.event.seq}`)),
    h("div", {id: "detail-body", dataset: {eventId}},
      ...section("links", links),
      ...section("payload", h("pre", {id: "detail-payload"}, pretty(payload))),
      ...section("envelope", h("pre", {id: "detail-envelope"}, pretty(envelope))),
      ...section("deliveries", receipts),
      ...section("causation chain (root first)", chain),
      ...section("caused", caused)));
}

// --- wiring ----------------------------------------------------------------------------
const params = new URLSearchParams(location.search);
for (const name of ["event_type", "producer", "correlation_id", "q"]) {
  if (params.get(name) && form.elements[name]) form.elements[name].value = params.get(name);
}
let typing = null;
function filtersChanged() {
  clearTimeout(typing);
  typing = setTimeout(() => {
    const q = query({});
    history.replaceState(null, "", q ? `?${q}` : location.pathname);
    reload();
  }, 250);
}
form.addEventListener("input", (e) => { if (e.target !== liveSwitch) filtersChanged(); });
form.addEventListener("submit", (e) => { e.preventDefault(); filtersChanged(); });
liveSwitch.addEventListener("change", () => {
  showConnection(liveSwitch.checked ? stream.state : "paused");
  if (liveSwitch.checked) reload(); else showStatus();
});

const stream = new EventStream({
  onState: (state, detailText) => showConnection(liveSwitch.checked ? state : "paused", detailText),
  onEntries, // the snapshot's history too: it covers what happened between the first load and the connect
});
reload().then(() => stream.start());
if (params.get("event")) showDetail(params.get("event"));
window.eventflowStream = stream;
