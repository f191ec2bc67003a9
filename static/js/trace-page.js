// `/orders/<order_id>/`: the order's status and the trace of its flow, live.
//
// The trace comes from /api/traces/<order_id>/ (the dashboard's log only); any
// stream entry of this order's flow schedules a refetch, a few times a second at most.

import {EventStream, showConnection} from "./stream.js";
import {clear, formatMs, getJSON, h, msBetween, shortId, timeOf} from "./dom.js";

const root = document.getElementById("trace");
const orderId = root.dataset.orderId;
const statusBadge = document.getElementById("order-status");
const reason = document.getElementById("order-reason");
// Whoever placed the order holds its token: the form's redirect puts it in the fragment,
// which no server sees; sent as X-Order-Token it opens the order in full (the customer).
const token = new URLSearchParams(location.hash.slice(1)).get("token");
let ownCustomer = null;
let correlationIds = new Set();
let timer = null;
let inFlight = false;
let again = false;

function scheduleRefresh(delay = 200) {
  if (timer) return;
  timer = setTimeout(() => { timer = null; refresh(); }, delay);
}

async function refresh() {
  if (inFlight) { again = true; return; }
  inFlight = true;
  try {
    if (token && !ownCustomer) ownCustomer = await fetchOwnCustomer();
    render(await getJSON(`/api/traces/${encodeURIComponent(orderId)}/`));
  } catch (error) {
    if (error.status !== 404) statusBadge.title = error.message;
  } finally {
    inFlight = false;
    if (again) { again = false; scheduleRefresh(); }
  }
}

async function fetchOwnCustomer() {
  try {
    return (await getJSON(`/api/orders/${encodeURIComponent(orderId)}/`, {"X-Order-Token": token})).customer;
  } catch (error) {
    return null;  // not recorded yet: the next refresh asks again
  }
}

function render(trace) {
  correlationIds = new Set(trace.correlation_ids);
  const state = trace.state;
  statusBadge.dataset.status = state.status;
  statusBadge.textContent = state.status;
  reason.textContent = state.reason || "";
  document.getElementById("flow-link").href = `/events/?correlation_id=${encodeURIComponent(trace.correlation_ids[0])}`;
  renderOtelTrace(trace.trace_id, trace.trace_url);
  renderState(state);
  renderMetrics(trace.metrics);
  renderTimeline(trace.timeline, trace.orphan_receipts);
  clear(document.getElementById("tree")).append(tree(trace.tree));
}

// The order's OpenTelemetry trace id (when the stack exports traces), and a link to it in
// the tracing UI when EVENTFLOW_TRACE_URL is set.
function renderOtelTrace(traceId, traceUrl) {
  document.getElementById("otel-trace").hidden = !traceId;
  document.getElementById("otel-trace-id").textContent = traceId || "";
  const link = document.getElementById("otel-trace-link");
  link.hidden = !traceUrl;
  if (traceUrl) link.href = traceUrl;
}

function renderState(state) {
  const customer = ownCustomer || state.customer || {};
  const lines = (state.lines || []).map((line) => `${line.qty} × ${line.sku}`).join(", ");
  const facts = [
    ["status", state.status], ["reason", state.reason || "–"],
    ["customer", customer.name ? `${customer.name} <${customer.email}>` : "–"],
    ["lines", lines || "–"], ["total", state.total ?? "–"],
    ["payment", state.payment ? `${state.payment.event_type}${state.payment.amount ? ` ${state.payment.amount}` : ""}${state.payment.reason ? ` (${state.payment.reason})` : ""}` : "–"],
    ["stock", state.stock ? `${state.stock.event_type}${state.stock.reason ? ` (${state.stock.reason})` : ""}` : "–"],
  ];
  clear(document.getElementById("state")).append(h("dl", {class: "facts"},
    facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {dataset: {fact: k}}, v)])));
}

const QUERIES = new Set(["CheckStock"]);

function renderMetrics(m) {
  const panel = document.getElementById("metrics");
  if (!m) { clear(panel).append(h("p", {class: "muted small"}, "no order in this flow's log yet")); return; }
  const outcome = m.failed ? `${m.status} — failed: a context did not answer in time` : m.status;
  const facts = [
    ["mode", m.mode === "command" ? "command-driven" : "event-driven"],
    ["stock check", m.stock_check === "remote" ? "remote query to inventory" : "orders' local view"],
    ["outcome", outcome + (m.reason ? ` (${m.reason})` : "")],
    ["messages", `${m.messages} (${m.deliveries} event deliveries, ${m.commands} commands, ${m.replies} replies)`],
    ["hops", `${m.hops} on the critical path${m.critical_chain?.length ? `: ${m.critical_chain.join(" → ")}` : ""}`],
    ["wall latency", formatMs(m.latency_ms)],
    ["synchronous waits", String(m.synchronous_waits.length)],
  ];
  const waits = m.synchronous_waits.length
    ? h("table", {class: "grid waits"},
        h("thead", {}, h("tr", {}, h("th", {}, "waited for"), h("th", {}, "owner"), h("th", {}, "reply"), h("th", {class: "num"}, "wait"))),
        h("tbody", {}, m.synchronous_waits.map((w) => h("tr", {dataset: {command: w.command, outcome: w.outcome}},
          h("td", {}, w.command), h("td", {}, w.owner),
          h("td", {}, h("span", {class: `badge outcome-${w.outcome}`}, w.outcome)),
          h("td", {class: "num"}, formatMs(w.wait_ms))))))
    : h("p", {class: "muted small"}, "nobody waited: every step was an event its subscriber handled on its own");
  clear(panel).append(
    h("dl", {class: "facts", dataset: {mode: m.mode, failed: m.failed ? "1" : "0"}},
      facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {dataset: {metric: k}}, v)])),
    waits);
}

/** Commands (and their replies) come as receipts of kind command/reply: no event of theirs is logged. */
function commandsOf(orphans) {
  const commands = new Map(), rest = [];
  for (const entry of orphans || []) {
    const kind = entry.receipt.kind;
    if (kind !== "command" && kind !== "reply") { rest.push(entry); continue; }
    const item = commands.get(entry.receipt.event_id) || {kind: "command", command: null, replies: []};
    if (kind === "command") item.command = entry; else item.replies.push(entry);
    commands.set(entry.receipt.event_id, item);
  }
  const items = [];
  for (const item of commands.values()) {
    const first = item.command || item.replies[0];
    items.push({...item, at: first.receipt.published_at});
  }
  return {items, rest};
}

function commandRows(item, offset, maxTotal) {
  const r = (item.command || item.replies[0]).receipt;
  const query = QUERIES.has(r.event_type);
  const reply = item.replies[item.replies.length - 1];
  const waited = reply ? msBetween(r.published_at, reply.receipt.finished_at) : null;
  const rows = [h("tr", {class: "event-row command-row", dataset: {eventId: r.event_id, eventType: r.event_type, kind: query ? "query" : "command"}},
    h("td", {}, r.event_type, " ", h("span", {class: "badge"}, query ? "query" : "command")),
    h("td", {}, `${r.producer} → ${r.context}`),
    h("td", {class: "mono"}, timeOf(r.published_at)),
    h("td", {class: "num muted"}, `+${offset(r.published_at)}`),
    h("td", {colspan: 3, class: "small"}, reply ? `${r.producer} waited ${formatMs(waited)}` : `${r.producer} is waiting…`))];
  for (const entry of item.replies) rows.push(receiptRow(entry, maxTotal, `← reply from ${entry.receipt.context}`));
  return rows;
}

function renderTimeline(timeline, orphans) {
  const {items: commands, rest} = commandsOf(orphans);
  const items = [
    ...timeline.map((e) => ({kind: "event", event: e, at: e.envelope.occurred_at})),
    ...commands,
  ].sort((a, b) => new Date(a.at) - new Date(b.at));
  const start = items.length ? new Date(items[0].at) : null;
  const offset = (iso) => (start && iso ? formatMs(new Date(iso) - start) : "");
  const maxTotal = Math.max(1, ...timeline.flatMap((e) => e.receipts.map((r) => r.latency.total_ms || 0)),
    ...commands.flatMap((c) => c.replies.map((r) => r.latency.total_ms || 0)));
  const body = h("tbody");
  for (const entry of items) {
    if (entry.kind === "command") { body.append(...commandRows(entry, offset, maxTotal)); continue; }
    const item = entry.event;
    const env = item.envelope;
    body.append(h("tr", {class: "event-row", dataset: {eventId: env.event_id, eventType: env.event_type}},
      h("td", {}, env.event_type),
      h("td", {}, `by ${env.producer}`),
      h("td", {class: "mono"}, timeOf(env.occurred_at)),
      h("td", {class: "num muted"}, `+${offset(env.occurred_at)}`),
      h("td", {colspan: 3}, h("a", {class: "small", href: `/events/?event=${encodeURIComponent(env.event_id)}&correlation_id=${encodeURIComponent(env.correlation_id)}`}, shortId(env.event_id)))));
    for (const entry of item.receipts) body.append(receiptRow(entry, maxTotal));
  }
  for (const entry of rest) body.append(receiptRow(entry, maxTotal));
  clear(document.getElementById("timeline")).append(h("table", {class: "grid timeline"},
    h("thead", {}, h("tr", {},
      h("th", {}, "event / delivered to"), h("th", {}, "outcome"), h("th", {}, "at"), h("th", {class: "num"}, "since start"),
      h("th", {class: "num"}, "published → received"), h("th", {class: "num"}, "received → handled"), h("th", {}, "hop"))),
    body));
}

function receiptRow(entry, maxTotal, title = null) {
  const r = entry.receipt, lat = entry.latency;
  const scale = (ms) => `${Math.max(2, Math.round(((ms || 0) / maxTotal) * 100))}px`;
  return h("tr", {class: r.kind === "reply" ? "receipt-row reply-row" : "receipt-row",
                  dataset: {context: r.context, outcome: r.outcome, eventId: r.event_id, kind: r.kind || "delivery"}},
    h("td", {}, title || `→ ${r.context}`),
    h("td", {}, h("span", {class: `badge outcome-${r.outcome}`}, r.outcome), r.attempt > 1 ? ` try ${r.attempt}` : "",
      r.error ? h("div", {class: "reason small"}, r.error) : ""),
    h("td", {class: "mono"}, timeOf(r.finished_at)),
    h("td", {}),
    h("td", {class: "num"}, formatMs(lat.published_to_received_ms)),
    h("td", {class: "num"}, formatMs(lat.handle_ms)),
    h("td", {title: `relay ${formatMs(lat.relay_ms)}, queue ${formatMs(lat.queue_ms)}, handler ${formatMs(lat.handle_ms)}`},
      h("span", {class: "bar queue", style: `width:${scale(lat.published_to_received_ms)}`}),
      h("span", {class: "bar", style: `width:${scale(lat.handle_ms)}`})));
}

function tree(nodes) {
  if (!nodes.length) return h("p", {class: "muted small"}, "–");
  return h("ul", {class: "tree"}, nodes.map((node) => h("li", {dataset: {eventId: node.event_id}},
    h("span", {}, node.event_type), h("span", {class: "muted small"}, ` by ${node.producer}`),
    node.children.length ? tree(node.children) : "")));
}

function concerns(entry) {
  const env = entry.envelope || entry.receipt || {};
  return correlationIds.has(env.correlation_id) || (entry.envelope && entry.envelope.payload && entry.envelope.payload.order_id === orderId);
}

const stream = new EventStream({
  onState: showConnection,
  onEntries: (entries) => { if (entries.some(concerns)) scheduleRefresh(); },
});
refresh().then(() => stream.start());
// A safety net for a stream that is down: the log is the truth.
setInterval(() => { if (stream.state !== "live") scheduleRefresh(0); }, 5000);
window.eventflowStream = stream;
