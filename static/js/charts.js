// The graph page's small time-series charts for the last 5 minutes, drawn as SVG (no build step).
//
// Events/s, handled/s per context and order end-to-end p50 / p95 come from GET /api/timeseries/
// (the event log in 5-second buckets), asked again every few seconds. Queue depth has no
// history in the log: the page samples it from the stream's `queues` message (setQueues), so
// that chart starts filling when the page opens.

import {clear, getJSON, h, s} from "./dom.js";

const POLL_MS = 5000;
const WINDOW_MS = 5 * 60 * 1000;
const W = 320, H = 110, PAD = {left: 44, right: 8, top: 8, bottom: 18};
const COLOURS = {orders: "#3b5bdb", inventory: "#2b9a66", payments: "#d9480f", dashboard: "#868e96",
                 events: "#3b5bdb", p50: "#2b9a66", p95: "#d9363e"};

function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((m) => m >= value);
}

function format(value, unit) {
  if (value === null || value === undefined) return "–";
  if (unit === "ms") return value >= 1000 ? `${(value / 1000).toFixed(1)} s` : `${Math.round(value)} ms`;
  return value >= 10 ? String(Math.round(value)) : String(Math.round(value * 10) / 10);
}

/** One chart: named series of [time ms, value|null] points over the last WINDOW_MS. */
export class Chart {
  constructor(root, {title, unit = ""}) {
    this.unit = unit;
    this.svg = s("svg", {viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img", "aria-label": title});
    this.legend = h("p", {class: "chart-legend small"});
    this.root = h("figure", {class: "chart", dataset: {chart: title}},
      h("figcaption", {}, title), this.svg, this.legend);
    root.append(this.root);
  }

  draw(seriesByName, now = Date.now()) {
    clear(this.svg);
    clear(this.legend);
    const start = now - WINDOW_MS;
    const values = Object.values(seriesByName).flat().map(([, v]) => v).filter((v) => v !== null);
    const max = niceMax(Math.max(0, ...values));
    const x = (t) => PAD.left + ((t - start) / WINDOW_MS) * (W - PAD.left - PAD.right);
    const y = (v) => H - PAD.bottom - (v / max) * (H - PAD.top - PAD.bottom);
    for (const v of [0, max / 2, max]) {
      this.svg.append(s("line", {class: "chart-grid", x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v)}),
        s("text", {class: "chart-tick", x: PAD.left - 4, y: y(v) + 3, "text-anchor": "end"}, format(v, this.unit)));
    }
    this.svg.append(s("text", {class: "chart-tick", x: PAD.left, y: H - 4}, "−5 min"),
      s("text", {class: "chart-tick", x: W - PAD.right, y: H - 4, "text-anchor": "end"}, "now"));
    for (const [name, points] of Object.entries(seriesByName)) {
      const colour = COLOURS[name] || "#5f3dc4";
      // A gap (null) breaks the line; each run of points becomes its own polyline.
      let run = [];
      const flush = () => {
        if (run.length === 1) this.svg.append(s("circle", {cx: run[0][0], cy: run[0][1], r: 2, fill: colour}));
        if (run.length > 1) {
          this.svg.append(s("polyline", {class: "chart-line", stroke: colour, dataset: {series: name},
                                         points: run.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(" ")}));
        }
        run = [];
      };
      for (const [t, v] of points) {
        if (t < start) continue;
        if (v === null || v === undefined) flush(); else run.push([x(t), y(v)]);
      }
      flush();
      const last = [...points].reverse().find(([, v]) => v !== null && v !== undefined);
      this.legend.append(h("span", {class: "chart-key", dataset: {series: name}},
        h("i", {style: `background:${colour}`}), `${name} ${last ? format(last[1], this.unit) : "–"}`));
    }
  }
}

export class Charts {
  constructor(root) {
    this.root = root;
    this.events = new Chart(root, {title: "events / s"});
    this.handled = new Chart(root, {title: "handled / s per context"});
    this.depth = new Chart(root, {title: "queue depth per context"});
    this.latency = new Chart(root, {title: "order end to end p50 / p95", unit: "ms"});
    this.depths = {};
  }

  start() {
    this.poll();
    setInterval(() => this.poll(), POLL_MS);
    return this;
  }

  /** The stream's queues message: one queue-depth sample per context. */
  setQueues(queues) {
    const now = Date.now();
    for (const [name, depth] of Object.entries(queues.depths || {})) {
      const points = (this.depths[name] ||= []);
      points.push([now, depth]);
      while (points.length && points[0][0] < now - WINDOW_MS) points.shift();
    }
    this.depth.draw(this.depths, now);
  }

  async poll() {
    let body;
    try { body = await getJSON("/api/timeseries/"); } catch { return; }
    const start = Date.parse(body.start), step = body.bucket_seconds * 1000;
    // The server's clock decides where "now" is; each bucket is drawn at its end.
    const now = Date.parse(body.now);
    const points = (values) => values.map((v, i) => [start + (i + 1) * step, v]);
    this.events.draw({events: points(body.events_per_second)}, now);
    this.handled.draw(Object.fromEntries(Object.entries(body.handled_per_second).map(([c, v]) => [c, points(v)])), now);
    this.latency.draw({p50: points(body.order_latency_ms.p50), p95: points(body.order_latency_ms.p95)}, now);
    this.root.dataset.updated = body.now;
  }
}
