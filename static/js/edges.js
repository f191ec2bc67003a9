// The graph as an instrument: edge and node figures, and the side panel of one edge or node.
//
// The figures come from the server (dashboard/edges.py): the websocket's `edges` message
// once a second, or a replay's frame of the moment (timetravel.js calls setFigures too).
// The server counts per producer -> subscriber pair and per event type; the graph draws
// OrderRequested from the web form, so a drawn edge is matched to the server's by its
// event types: a drawn edge that is one server edge shows its figures as they are, one
// that holds some of a server edge's types shows the sum of their rates and the largest
// of their percentiles ("≤").
//
// The toggle labels each edge (events/s, p50 / p95, failure share) and each node
// (handled/s, backlog). Clicking an edge or a node opens the side panel: its event types
// with their rates, the last 5 minutes (GET /api/edges/?producer=&subscriber=), and its
// last failures linked to the event log.

import {clear, formatMs, getJSON, h, s} from "./dom.js";
import {Chart} from "./charts.js";

const PANEL_POLL_MS = 5000;

function rate(value) {
  if (!value) return "0/s";
  if (value >= 10) return `${Math.round(value)}/s`;
  return value >= 1 ? `${value.toFixed(1)}/s` : `${value.toFixed(2)}/s`;
}

function share(value) {
  return `${Math.round((value || 0) * 1000) / 10}%`;
}

/** Figures of a drawn edge from its server contributions [{edge, type, figures}]. */
function combine(contributions) {
  if (!contributions.length) return null;
  const servers = new Set(contributions.map((c) => c.edge));
  if (servers.size === 1) {
    const [edge] = servers;
    const busy = Object.keys(edge.types || {});
    if (busy.every((type) => contributions.some((c) => c.type === type))) return {...edge, exact: true};
  }
  if (contributions.length === 1) return {...contributions[0].figures, exact: true};
  const sum = (name) => contributions.reduce((total, c) => total + (c.figures[name] || 0), 0);
  const most = (name) => {
    const values = contributions.map((c) => c.figures[name]).filter((v) => v !== null && v !== undefined);
    return values.length ? Math.max(...values) : null;
  };
  const tries = sum("tries");
  return {events_per_s: sum("events_per_s"), count: sum("count"), failures: sum("failures"), tries,
          failure_share: tries ? sum("failures") / tries : 0, p50_ms: most("p50_ms"), p95_ms: most("p95_ms"), exact: false};
}

export class EdgeMetrics {
  constructor(graph, {toggle, panel}) {
    this.graph = graph;
    this.toggle = toggle;
    this.panel = panel;
    this.figures = null;
    this.selected = null;
    this.installedFor = null;
    this.live = true; // false while a replay shows the figures of its moment
    toggle.addEventListener("change", () => this.render());
    setInterval(() => { if (this.selected && this.live) this.loadDetail(); }, PANEL_POLL_MS);
  }

  get on() { return this.toggle.checked; }

  /** The figures to show: {edges, nodes, window}. */
  setFigures(figures) {
    this.figures = figures;
    this.render();
  }

  /** Hit areas and label elements for what the graph drew (again after a new topology). */
  install() {
    if (this.installedFor === this.graph.signature) return;
    this.installedFor = this.graph.signature;
    this.labels = new Map();
    this.nodeLabels = new Map();
    for (const edge of this.graph.edges.values()) {
      if (!edge) continue;
      const hit = s("path", {class: "edge-hit", d: edge.path.getAttribute("d"), dataset: {edge: edge.key},
                             onclick: () => this.select({edge: edge.key})});
      hit.append(s("title", {text: `${edge.from} → ${edge.to}: click for its figures`}));
      this.graph.edgeLayer.append(hit);
      const mid = edge.path.getPointAtLength(edge.length / 2);
      // A drop into the log bar is vertical: its label beside it, towards the middle of the graph.
      const log = edge.path.classList.contains("edge-log");
      const right = mid.x > this.graph.svg.viewBox.baseVal.width / 2;
      const label = s("text", {class: "edge-metric hidden", dataset: {edge: edge.key},
                               x: (log ? mid.x + (right ? -6 : 6) : mid.x).toFixed(1), y: (log ? mid.y : mid.y + 16).toFixed(1),
                               "text-anchor": log ? (right ? "end" : "start") : "middle"});
      this.graph.labelLayer.append(label);
      this.labels.set(edge.key, label);
    }
    for (const node of this.graph.nodes.values()) {
      if (node.kind === "origin") continue;
      node.g.addEventListener("click", () => this.select({node: node.name}));
      const box = node.g.querySelector("rect").getBBox();
      const label = node.kind === "log"
        ? s("text", {class: "node-metric hidden", x: box.x + box.width / 2, y: box.y + 27, "text-anchor": "middle"})
        : s("text", {class: "node-metric hidden", x: box.x + box.width, y: box.y - 6, "text-anchor": "end"});
      node.g.append(label);
      this.nodeLabels.set(node.name, label);
    }
  }

  /** Server contributions per drawn edge key. */
  byDrawnEdge() {
    const drawn = new Map();
    for (const edge of this.figures?.edges || []) {
      for (const [type, figures] of Object.entries(edge.types || {})) {
        const route = (this.graph.routes.get(type) || []).find((r) => r.subscriber === edge.subscriber);
        if (!route || !route.edge) continue;
        if (!drawn.has(route.edge.key)) drawn.set(route.edge.key, []);
        drawn.get(route.edge.key).push({edge, type, figures});
      }
    }
    return drawn;
  }

  render() {
    if (!this.graph.edges.size) return;
    this.install();
    this.graph.svg.classList.toggle("edge-metrics-on", this.on);
    const drawn = this.byDrawnEdge();
    for (const [key, label] of this.labels) {
      const figures = combine(drawn.get(key) || []);
      const text = !figures ? "idle"
        : `${rate(figures.events_per_s)} · p50 ${formatMs(figures.p50_ms)} · p95 ${figures.exact ? "" : "≤"}${formatMs(figures.p95_ms)} · ${share(figures.failure_share)} failed`;
      label.textContent = text;
      label.setAttribute("class", `edge-metric${this.on ? "" : " hidden"}${figures?.failures ? " failing" : ""}`);
      label.dataset.eventsPerS = String(figures?.events_per_s ?? 0);
      label.dataset.p95Ms = String(figures?.p95_ms ?? "");
      label.dataset.failureShare = String(figures?.failure_share ?? 0);
    }
    for (const [name, label] of this.nodeLabels) {
      const node = this.figures?.nodes?.[name] || {};
      const backlog = node.backlog ?? this.graph.nodes.get(name)?.g.dataset.queue ?? "?";
      label.textContent = `${rate(node.handled_per_s)} · backlog ${backlog === "" ? "?" : backlog}`;
      label.setAttribute("class", `node-metric${this.on ? "" : " hidden"}`);
      label.dataset.handledPerS = String(node.handled_per_s ?? 0);
    }
    if (this.selected) this.renderPanel();
  }

  // --- the side panel ----------------------------------------------------------------

  select(which) {
    this.selected = which;
    this.detail = null;
    for (const path of this.graph.svg.querySelectorAll(".selected")) path.classList.remove("selected");
    const target = which.edge ? this.graph.edges.get(which.edge)?.path : this.graph.nodes.get(which.node)?.g;
    target?.classList.add("selected");
    this.panel.hidden = false;
    this.renderPanel();
    this.loadDetail();
  }

  close() {
    this.selected = null;
    this.panel.hidden = true;
    for (const path of this.graph.svg.querySelectorAll(".selected")) path.classList.remove("selected");
  }

  /** The server's producer and subscriber of the selection, and the event types it holds. */
  query() {
    if (this.selected.node) return {subscriber: this.selected.node, types: null};
    const edge = this.graph.edges.get(this.selected.edge);
    const types = edge ? [...edge.labels.keys()] : [];
    const routes = [...this.graph.routes.entries()].filter(([type]) => types.includes(type));
    const producer = edge?.from === "web form" ? null : edge?.from;
    return {producer: producer ?? this.producerOf(routes), subscriber: edge?.to, types: types.length ? types : null};
  }

  producerOf(routes) {
    const edge = (this.figures?.edges || []).find((e) => routes.some(([type]) => e.types?.[type]));
    return edge ? edge.producer : null;
  }

  async loadDetail() {
    const {producer, subscriber} = this.query();
    const params = new URLSearchParams({window: String(this.figures?.window || 60)});
    if (producer) params.set("producer", producer);
    if (subscriber) params.set("subscriber", subscriber);
    const selected = this.selected;
    try {
      const detail = await getJSON(`/api/edges/?${params}`);
      if (this.selected === selected) { this.detail = detail; this.renderPanel(); }
    } catch { /* the panel keeps what it had */ }
  }

  renderPanel() {
    const {producer, subscriber, types} = this.query();
    const title = this.selected.node ? `${this.selected.node}: what it handles` : `${this.graph.edges.get(this.selected.edge)?.from} → ${subscriber}`;
    const rows = [];
    for (const edge of this.figures?.edges || []) {
      if (subscriber && edge.subscriber !== subscriber) continue;
      if (producer && !this.selected.node && edge.producer !== producer) continue;
      for (const [type, f] of Object.entries(edge.types || {})) {
        if (types && !types.includes(type)) continue;
        rows.push(h("tr", {dataset: {eventType: type}},
          h("td", {class: "mono"}, type), h("td", {class: "muted"}, edge.producer),
          h("td", {class: "num"}, rate(f.events_per_s)), h("td", {class: "num"}, formatMs(f.p50_ms)),
          h("td", {class: "num"}, formatMs(f.p95_ms)), h("td", {class: "num"}, share(f.failure_share))));
      }
    }
    const table = h("table", {class: "grid small"},
      h("thead", {}, h("tr", {}, h("th", {}, "event type"), h("th", {}, "from"), h("th", {class: "num"}, "rate"),
        h("th", {class: "num"}, "p50"), h("th", {class: "num"}, "p95"), h("th", {class: "num"}, "failed"))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", {colspan: 6, class: "muted"}, "nothing in the window"))));
    const chartBox = h("div", {class: "panel-chart"});
    const failures = h("ol", {class: "panel-failures small"});
    if (this.detail) {
      const chart = new Chart(chartBox, {title: "deliveries / s, last 5 minutes"});
      const step = (this.detail.series_bucket || 10) * 1000;
      const points = (this.detail.series || []).map((p) => [(p.t * 1000) + step, p.events_per_s]);
      chart.draw({events: points}, points.length ? points[points.length - 1][0] : Date.now());
      for (const failure of this.detail.failures || []) {
        failures.append(h("li", {dataset: {eventId: failure.event_id}},
          h("a", {href: `/events/?event=${encodeURIComponent(failure.event_id)}`}, `${failure.event_type} → ${failure.context}`),
          " ", h("span", {class: `badge outcome-${failure.outcome}`}, failure.outcome),
          " ", h("span", {class: "muted"}, failure.error || "")));
      }
      if (!failures.children.length) failures.append(h("li", {class: "muted"}, "no failure in the log"));
    }
    clear(this.panel).append(
      h("div", {class: "card-head"}, h("h2", {}, title),
        h("button", {type: "button", class: "panel-close", onclick: () => this.close(), "aria-label": "close"}, "×")),
      h("p", {class: "muted small"}, `over the last ${this.figures?.window || 60} s${this.live ? "" : " of the replayed moment"}`),
      table, chartBox, h("h3", {class: "small"}, "last failures"), failures);
    this.panel.dataset.selected = this.selected.edge || this.selected.node;
  }
}
