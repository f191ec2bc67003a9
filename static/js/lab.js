// The lab on `/`: each context's consumer (online / paused / offline) with a pause/resume
// switch for staff, its subscription (attached / replaying / detached) with a detach/attach
// switch, the stock-check switch, and the events-against-commands comparison.
//
// Consumer state comes with the stream's `queues` message; when that is silent (stream
// down) the panel asks GET /api/contexts/ itself. The switches POST with the CSRF token
// the template put in the panel; the server refuses anyone but staff whatever the page shows.

import {clear, formatMs, getJSON, h} from "./dom.js";

const CONTEXTS_POLL_MS = 2000;
const COMPARISON_POLL_MS = 3000;
const OVERRIDE_MS = 4000; // a switch's answer beats a queues message that was asked before it
const FIGURES = [
  ["placed", "placed"], ["confirmed", "confirmed"], ["rejected", "rejected"], ["failed", "failed"],
  ["pending", "pending"], ["latency_p50_ms", "p50"], ["latency_p95_ms", "p95"],
  ["messages_per_order", "msgs/order"], ["hops_per_order", "hops/order"], ["sync_waits_per_order", "waits/order"],
];

export class Lab {
  constructor(root) {
    this.root = root;
    this.staff = root.dataset.staff === "1";
    this.csrf = root.querySelector("input[name=csrfmiddlewaretoken]")?.value || "";
    this.body = root.querySelector("#lab-contexts tbody");
    this.error = root.querySelector("#lab-error");
    this.flag = root.querySelector("#lab-stock-check strong");
    this.flagButton = root.querySelector("#stock-check-toggle");
    this.rows = new Map();
    this.overrides = new Map();
    this.queuesAt = 0;
    this.flagButton?.addEventListener("click", () => this.toggleStockCheck());
  }

  start() {
    this.pollContexts();
    this.pollComparison();
    this.loadFlag();
    setInterval(() => { if (Date.now() - this.queuesAt > 2 * CONTEXTS_POLL_MS) this.pollContexts(); }, CONTEXTS_POLL_MS);
    setInterval(() => this.pollComparison(), COMPARISON_POLL_MS);
    return this;
  }

  // --- consumers -----------------------------------------------------------------
  /** The stream's queues message: {depths, consumers, online, ...}. */
  setQueues(queues) {
    this.queuesAt = Date.now();
    const names = Object.keys(queues.depths || {}).filter((n) => n !== "dashboard").sort();
    for (const name of names) {
      const consumer = queues.consumers?.[name];
      const online = queues.online?.[name];
      const state = consumer && consumer !== "unknown" ? consumer : online === true ? "online" : online === false ? "offline" : "unknown";
      this.show(name, state, queues.depths[name], queues.subscriptions?.[name]);
    }
  }

  async pollContexts() {
    try {
      const body = await getJSON("/api/contexts/");
      for (const ctx of body.contexts || []) {
        if (ctx.name === "dashboard") continue;
        this.show(ctx.name, ctx.consumer && ctx.consumer !== "unknown" ? ctx.consumer
          : ctx.online === true ? "online" : ctx.online === false ? "offline" : "unknown", ctx.queue_depth, ctx);
      }
    } catch { /* the stream or the next poll will tell */ }
  }

  row(name) {
    if (this.rows.has(name)) return this.rows.get(name);
    const state = h("span", {class: "consumer-state"}, "…");
    const depth = h("td", {class: "num"}, "?");
    const button = this.staff
      ? h("button", {type: "button", class: "lab-button", dataset: {context: name}, onclick: () => this.toggle(name)}, "pause")
      : null;
    const link = h("span", {class: "subscription-state"}, "…");
    const linkButton = this.staff
      ? h("button", {type: "button", class: "lab-button", dataset: {context: name, link: "detach"}, onclick: () => this.toggleLink(name)}, "detach")
      : null;
    const tr = h("tr", {dataset: {context: name, consumer: "unknown", attached: "1"}},
      h("td", {}, h("strong", {}, name)), h("td", {}, state), depth, h("td", {}, button || ""),
      h("td", {class: "subscription"}, link, linkButton ? " " : "", linkButton || ""));
    const row = {tr, state, depth, button, link, linkButton};
    this.rows.set(name, row);
    // Keep the rows in name order whatever order they were first seen in.
    const after = [...this.body.children].find((other) => other.dataset.context > name);
    this.body.insertBefore(tr, after || null);
    return row;
  }

  /** Attached or detached (and the replay's lag): eventbus/subscriptions.py via the queues frame or /api/contexts/. */
  showLink(row, subscription) {
    if (!subscription || row.linkBusy) return;
    const {attached, replaying, lag} = subscription;
    row.tr.dataset.attached = attached ? "1" : "0";
    row.tr.dataset.lag = String(lag ?? 0);
    row.link.textContent = !attached ? `detached (${lag ?? 0} behind)` : replaying ? `replaying (lag ${lag ?? 0})` : "attached";
    row.link.className = `subscription-state ${attached ? (replaying ? "replaying" : "attached") : "detached"}`;
    if (row.linkButton) {
      row.linkButton.textContent = attached ? "detach" : "attach";
      row.linkButton.dataset.link = attached ? "detach" : "attach";
      row.linkButton.disabled = false;
    }
  }

  async toggleLink(name) {
    const row = this.row(name);
    const action = row.linkButton.dataset.link;
    const reply = await this.contextAction(name, row, "linkButton", "linkBusy", action,
      action === "detach" ? "detaching…" : "attaching…");
    if (reply) this.showLink(row, reply);
    else { row.linkButton.disabled = false; row.linkButton.textContent = action; }
  }

  /** POST a context action from one of its row's buttons: the button says it is busy meanwhile; a refusal shows in the panel. */
  async contextAction(name, row, button, busy, action, busyText) {
    row[busy] = true;
    row[button].disabled = true;
    row[button].textContent = busyText;
    this.error.textContent = "";
    try {
      return await this.post(`/api/contexts/${encodeURIComponent(name)}/${action}`);
    } catch (error) {
      this.error.textContent = error.message;
      return null;
    } finally {
      row[busy] = false;
    }
  }

  show(name, state, depth, subscription) {
    const override = this.overrides.get(name);
    if (override && Date.now() < override.until && state !== override.state) state = override.state;
    else this.overrides.delete(name);
    const row = this.row(name);
    this.showLink(row, subscription);
    row.tr.dataset.consumer = state;
    row.state.textContent = state;
    row.state.className = `consumer-state ${state}`;
    if (depth !== undefined && depth !== null) row.depth.textContent = String(depth);
    if (row.button && !row.busy) {
      row.button.textContent = state === "paused" ? "resume" : "pause";
      row.button.dataset.action = state === "paused" ? "resume" : "pause";
      row.button.disabled = state === "offline" || state === "unknown";
    }
  }

  async post(url, body) {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"X-CSRFToken": this.csrf, "Content-Type": "application/json", Accept: "application/json"},
      body: body === undefined ? "" : JSON.stringify(body),
    });
    let data = {};
    try { data = await response.json(); } catch { /* an HTML error page */ }
    if (!response.ok) {
      const errors = data.errors ? Object.values(data.errors).flat().join("; ") : "";
      throw new Error(`${url}: HTTP ${response.status}${errors ? ` (${errors})` : ""}`);
    }
    return data;
  }

  async toggle(name) {
    const row = this.row(name);
    const action = row.button.dataset.action || "pause";
    const reply = await this.contextAction(name, row, "button", "busy", action, action === "pause" ? "pausing…" : "resuming…");
    if (!reply) return this.show(name, row.tr.dataset.consumer);
    const state = reply.consumer || (action === "pause" ? "paused" : "online");
    this.overrides.set(name, {state, until: Date.now() + OVERRIDE_MS});
    this.show(name, state);
  }

  // --- the stock-check switch ------------------------------------------------------
  showFlag(value) {
    this.flag.dataset.value = value;
    this.flag.textContent = value === "remote" ? "remote query to inventory (CheckStock)" : "local view (fed by InventoryChanged)";
    if (this.flagButton) {
      this.flagButton.disabled = false;
      this.flagButton.textContent = value === "remote" ? "use the local view" : "query inventory";
    }
  }

  async loadFlag() {
    try { this.showFlag((await getJSON("/api/flags/stock_check")).value); } catch (error) { this.flag.textContent = "?"; }
  }

  async toggleStockCheck() {
    const next = this.flag.dataset.value === "remote" ? "local" : "remote";
    this.flagButton.disabled = true;
    this.error.textContent = "";
    try {
      this.showFlag((await this.post("/api/flags/stock_check", {value: next})).value);
    } catch (error) {
      this.error.textContent = error.message;
      this.flagButton.disabled = false;
    }
  }

  // --- the comparison ----------------------------------------------------------------
  async pollComparison() {
    let data;
    try { data = await getJSON("/api/comparison/"); } catch { return; }
    const panel = document.getElementById("comparison-table");
    if (!panel) return;
    const body = h("tbody");
    for (const mode of ["event", "command"]) {
      const figures = data.modes?.[mode] || {};
      for (const [key, label] of [["all", "all"], ["while_offline", "while offline"]]) {
        const row = figures[key] || {};
        body.append(h("tr", {class: key === "all" ? "mode-first" : "", dataset: {mode, row: key}},
          h("th", {}, key === "all" ? (mode === "event" ? "event-driven" : "command-driven") : ""),
          h("td", {class: "muted"}, label),
          FIGURES.map(([field]) => h("td", {class: `num field-${field}`, dataset: {field, value: String(row[field] ?? "")}},
            field.startsWith("latency") ? formatMs(row[field]) : (row[field] ?? "–")))));
      }
    }
    const d = data.decoupling;
    const decoupling = d ? h("p", {class: "small", id: "comparison-decoupling", dataset: {context: d.context, replayed: String(d.replayed)}},
      `added a subscriber (${d.context}): producer changes ${d.producer_changes}, downtime ${d.downtime}, events replayed ${d.replayed}`,
      h("span", {class: "muted"}, ` · ${d.placed_while_detached} orders placed while it was detached`)) : "";
    clear(panel).append(h("table", {class: "grid comparison", dataset: {orders: String(data.orders ?? 0)}},
      h("thead", {}, h("tr", {}, h("th", {}, "mode"), h("th", {}, "orders"), FIGURES.map(([field, label]) => h("th", {class: "num", title: field.replaceAll("_", " ")}, label)))),
      body), decoupling);
  }
}
