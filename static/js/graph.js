// The propagation graph: contexts as nodes, producer -> subscriber routes as edges.
//
// Each event sends a token along each of its edges; the token waits near the
// subscriber until that subscriber's receipt arrives, then completes (green) or
// fails (red). Under load the tokens coalesce: each edge draws at most
// MAX_DOTS of its in-flight deliveries and counts the rest ("+N"); the map of
// deliveries in flight is bounded, and one requestAnimationFrame loop draws all.
//
// Events travel on dashed edges (the topology's routes). Commands of the lab's
// command-driven mode travel on a solid lane from their sender to their owner and
// wait there; their reply travels back along it. The hybrid stock query (CheckStock)
// has a dotted lane of its own. Lanes share the dot pool and the in-flight bound.

import {clear, s} from "./dom.js";

export const WEB_FORM = "web form";
const ORIGIN_OF = {OrderRequested: WEB_FORM}; // drawn from where it really starts
const W = 1000, H = 560;
const BOX_W = 190, BOX_H = 96;
const LOG_Y = 506; // the dashboard: a bar along the bottom, every context drops into it
const FIXED = {
  [WEB_FORM]: [100, 330],
  orders: [395, 330],
  inventory: [640, 80],
  payments: [885, 330],
  shipping: [140, 100],
};
const MAX_DOTS = 6;
const TRAVEL_MS = 650;
const FINISH_MS = 260;
const FAIL_HOLD_MS = 1400;
const STALE_MS = 60000;
const MAX_IN_FLIGHT = 4000;
const MAX_EARLY = 2000;
const QUERIES = new Set(["CheckStock"]);
// Commands are not in the topology message (it lists event routes): the lanes the lab's
// flows use are drawn from the start, any other pair gets its lane when first seen.
const KNOWN_LANES = [["orders", "inventory", "command"], ["orders", "payments", "command"], ["orders", "inventory", "query"]];
const LANE_BEND = {command: 0, query: 16, replay: 0};
const BAD_REPLIES = new Set(["refused", "timeout", "unsent", "expired", "invalid"]);

function setClass(element, value) {
  if (element.getAttribute("class") !== value) element.setAttribute("class", value);
}

export class Graph {
  constructor(svg, {onDelivery = () => {}} = {}) {
    this.svg = svg;
    this.onDelivery = onDelivery;
    this.nodes = new Map();
    this.edges = new Map();
    this.lanes = new Map(); // `${sender}->${owner}|command|query` -> edge
    this.routes = new Map(); // event_type -> [{edge, subscriber}]
    this.inFlight = new Map(); // `${event_id}|${subscriber}` -> token
    this.early = new Map(); // receipts that came before their event
    this.running = false;
    this.accepts = () => true; // whether an event's tokens are drawn (follow.js narrows it to one flow)
  }

  // --- layout --------------------------------------------------------------------
  setTopology(topology) {
    const signature = JSON.stringify(topology);
    if (signature === this.signature) return; // a reconnect's snapshot: keep what is drawn and in flight
    this.signature = signature;
    this.inFlight.clear();
    this.early.clear();
    const contexts = new Set(topology.nodes || []);
    const names = [WEB_FORM, ...[...contexts].filter((n) => n !== "dashboard").sort()];
    const spare = names.filter((n) => !FIXED[n]);
    const positions = {...FIXED};
    spare.forEach((name, i) => { positions[name] = [140 + (i * 260) % 780, 420]; });
    clear(this.svg);
    this.svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    this.svg.append(s("defs", {},
      s("marker", {id: "arrow", viewBox: "0 0 10 10", refX: "9", refY: "5", markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse"},
        s("path", {d: "M0,0 L10,5 L0,10 z", class: "arrowhead"}))));
    this.edgeLayer = s("g", {class: "edges"});
    this.labelLayer = s("g", {class: "edge-labels"});
    this.dotLayer = s("g", {class: "dots"});
    this.nodeLayer = s("g", {class: "nodes"});
    this.svg.append(this.edgeLayer, this.nodeLayer, this.labelLayer, this.dotLayer);
    this.nodes.clear();
    this.edges.clear();
    this.lanes.clear();
    this.routes.clear();
    for (const name of names) this.addNode(name, positions[name]);
    if (contexts.has("dashboard")) this.addLogBar();

    const pairs = new Map();
    for (const route of topology.routes || []) {
      const from = ORIGIN_OF[route.event_type] || route.producer;
      const key = `${from}->${route.subscriber}`;
      if (!pairs.has(key)) pairs.set(key, {from, to: route.subscriber, types: []});
      pairs.get(key).types.push(route.event_type);
    }
    for (const [key, pair] of pairs) {
      const edge = this.addEdge(key, pair, pairs.has(`${pair.to}->${pair.from}`));
      for (const type of pair.types) {
        if (!this.routes.has(type)) this.routes.set(type, []);
        this.routes.get(type).push({edge, subscriber: pair.to});
      }
    }
    for (const [from, to, style] of KNOWN_LANES) this.lane(from, to, style);
    this.start();
  }

  addNode(name, [x, y]) {
    const g = s("g", {class: "node", transform: `translate(${x - BOX_W / 2},${y - BOX_H / 2})`, dataset: {node: name}});
    g.append(s("rect", {class: "node-box", width: BOX_W, height: BOX_H, rx: 12}));
    const title = s("text", {class: "node-title", x: 14, y: 24, text: name});
    const online = s("circle", {class: "online-dot", cx: BOX_W - 16, cy: 19, r: 6});
    const onlineText = s("title", {text: "consumer state unknown"});
    online.append(onlineText);
    const stats = s("text", {class: "node-stats", x: 14, y: 45});
    const failed = s("text", {class: "node-failed", x: 14, y: 63});
    const last = s("text", {class: "node-last", x: 14, y: 82});
    if (name === WEB_FORM) {
      stats.textContent = "/orders/new/ and the API";
      last.textContent = "origin of OrderRequested";
      online.setAttribute("class", "online-dot hidden");
    }
    g.append(title, online, stats, failed, last);
    this.nodeLayer.append(g);
    this.nodes.set(name, {name, x, y, g, stats, failed, last, online, onlineText, pulseAt: 0, failAt: 0,
      queue: null, handled: 0, failures: 0, kind: name === WEB_FORM ? "origin" : "context"});
  }

  addLogBar() {
    const g = s("g", {class: "node log-bar", dataset: {node: "dashboard"}});
    g.append(s("rect", {class: "node-box", x: 30, y: LOG_Y - 22, width: W - 60, height: 44, rx: 12}));
    const title = s("text", {class: "node-title", x: 48, y: LOG_Y + 5, text: "dashboard"});
    const stats = s("text", {class: "node-stats", x: 170, y: LOG_Y + 5});
    const last = s("text", {class: "node-last", x: W - 48, y: LOG_Y + 5, "text-anchor": "end", text: "logs every event and receipt"});
    const online = s("circle", {class: "online-dot", cx: 152, cy: LOG_Y, r: 6});
    const onlineText = s("title", {text: "consumer state unknown"});
    online.append(onlineText);
    g.append(title, online, stats, last);
    this.nodeLayer.append(g);
    this.nodes.set("dashboard", {name: "dashboard", x: null, y: LOG_Y, g, stats, last, online, onlineText,
      pulseAt: 0, failAt: 0, queue: null, handled: 0, failures: 0, kind: "log"});
  }

  geometry(from, to, twoWay, laneBend = null) {
    const a = this.nodes.get(from), b = this.nodes.get(to);
    if (!a || !b) return null;
    if (a.kind === "log") { // a replay: from the log straight up into the node
      const x = b.x - BOX_W / 2 + 24, top = b.y + BOX_H / 2;
      return {d: `M${x},${LOG_Y - 22} V${top}`, lx: x + 6, ly: (LOG_Y - 22 + top) / 2, anchor: "start", up: false};
    }
    if (b.kind === "log") {
      const bottom = LOG_Y - 22;
      if (a.y < 200) { // a top-row node drops beside the routes, not through their labels
        const x = a.x + BOX_W / 2 + 34;
        return {d: `M${a.x + BOX_W / 2},${a.y} H${x} V${bottom}`, lx: x + 6, ly: (a.y + bottom) / 2, log: true};
      }
      return {d: `M${a.x},${a.y + BOX_H / 2} V${bottom}`, lx: a.x + 6, ly: (a.y + BOX_H / 2 + bottom) / 2, log: true};
    }
    // Leave and enter at the box border, bend two-way pairs apart.
    const dx = b.x - a.x, dy = b.y - a.y;
    const len = Math.hypot(dx, dy) || 1;
    const nx = -dy / len, ny = dx / len;
    const bend = laneBend !== null ? laneBend : twoWay ? 38 : (from === WEB_FORM && to !== "orders" ? -110 : 0);
    const clip = (node, ux, uy) => {
      const tx = Math.abs(ux) > 1e-6 ? (BOX_W / 2 + 6) / Math.abs(ux) : Infinity;
      const ty = Math.abs(uy) > 1e-6 ? (BOX_H / 2 + 6) / Math.abs(uy) : Infinity;
      const t = Math.min(tx, ty);
      return [node.x + ux * t, node.y + uy * t];
    };
    const [x1, y1] = clip(a, dx / len + nx * bend / len, dy / len + ny * bend / len);
    const [x2, y2] = clip(b, -dx / len + nx * bend / len, -dy / len + ny * bend / len);
    const cx = (a.x + b.x) / 2 + nx * bend * 1.6, cy = (a.y + b.y) / 2 + ny * bend * 1.6;
    const mx = 0.25 * x1 + 0.5 * cx + 0.25 * x2, my = 0.25 * y1 + 0.5 * cy + 0.25 * y2;
    const side = bend === 0 ? -1 : Math.sign(bend);
    return {d: `M${x1},${y1} Q${cx},${cy} ${x2},${y2}`, lx: mx + nx * 14 * side, ly: my + ny * 14 * side,
      anchor: Math.abs(nx * side) < 0.3 ? "middle" : (nx * side > 0 ? "start" : "end"), up: ny * side < 0};
  }

  addEdge(key, pair, twoWay) {
    const geo = this.geometry(pair.from, pair.to, twoWay);
    if (!geo) return null;
    const path = s("path", {class: geo.log ? "edge edge-log" : "edge", d: geo.d, "marker-end": "url(#arrow)", dataset: {edge: key}});
    this.edgeLayer.append(path);
    const labels = new Map();
    if (!geo.log) {
      const lineHeight = 13;
      const top = geo.up ? geo.ly - (pair.types.length - 1) * lineHeight : geo.ly;
      const text = s("text", {class: "edge-label", x: geo.lx, y: top, "text-anchor": geo.anchor});
      pair.types.forEach((type, i) => {
        const span = s("tspan", {x: geo.lx, dy: i === 0 ? 0 : lineHeight, text: type});
        labels.set(type, span);
        text.append(span);
      });
      this.labelLayer.append(text);
    }
    const {dots, more} = this.dotPool(geo.log ? 3 : 5, geo.lx, geo.ly + (geo.log ? 14 : -16));
    const edge = {key, from: pair.from, to: pair.to, path, length: path.getTotalLength(), labels, dots, more,
      tokens: new Set(), activeAt: 0};
    this.edges.set(key, edge);
    return edge;
  }

  /** The solid (command) or dotted (query) lane from a sender to an owner, made on first use. */
  lane(from, to, style) {
    const key = `${from}->${to}|${style}`;
    if (this.lanes.has(key)) return this.lanes.get(key);
    const geo = this.nodes.has(from) && this.nodes.has(to) && this.nodes.get(to).kind !== "log"
      ? this.geometry(from, to, false, LANE_BEND[style]) : null;
    if (!geo) { this.lanes.set(key, null); return null; }
    const path = s("path", {class: `edge ${style}`, d: geo.d, "marker-end": "url(#arrow)", "marker-start": "url(#arrow)",
      dataset: {lane: key, style}});
    this.edgeLayer.append(path);
    const label = s("text", {class: "lane-label", x: geo.lx, y: geo.ly + (style === "query" ? 14 : 0), "text-anchor": geo.anchor});
    this.labelLayer.append(label);
    const {dots, more} = this.dotPool(5, geo.lx, geo.ly - 16);
    const edge = {key, from, to, style, path, length: path.getTotalLength(), labels: new Map(), label, dots, more,
      tokens: new Set(), activeAt: 0};
    this.lanes.set(key, edge);
    return edge;
  }

  /** An edge's or lane's MAX_DOTS hidden dots of radius `r`, and its "+N" counter at (x, y). */
  dotPool(r, x, y) {
    const dots = [];
    for (let i = 0; i < MAX_DOTS; i += 1) {
      const dot = s("circle", {class: "dot hidden", r});
      this.dotLayer.append(dot);
      dots.push(dot);
    }
    const more = s("text", {class: "edge-more hidden", x, y, "text-anchor": "middle"});
    this.dotLayer.append(more);
    return {dots, more};
  }

  // --- stream input ----------------------------------------------------------------
  addEntries(entries) {
    const now = performance.now();
    for (const entry of entries) {
      if (entry.type === "event") this.addEvent(entry.envelope, now);
      else if (entry.type === "receipt") this.addReceipt(entry.receipt, now);
    }
  }

  addEvent(envelope, now) {
    if (!envelope || !this.accepts(envelope)) return;
    const origin = this.nodes.get(ORIGIN_OF[envelope.event_type] || envelope.producer);
    if (origin) {
      origin.pulseAt = now;
      origin.last.textContent = `sent ${envelope.event_type}`;
    }
    for (const {edge, subscriber} of this.routes.get(envelope.event_type) || []) {
      if (!edge) continue;
      const key = `${envelope.event_id}|${subscriber}`;
      if (this.inFlight.has(key)) continue;
      const token = {key, edge, envelope, subscriber, startedAt: now, doneAt: null, outcome: null};
      edge.tokens.add(token);
      edge.activeAt = now;
      const label = edge.labels.get(envelope.event_type);
      if (label) {
        token.label = label;
        label.inFlight = (label.inFlight || 0) + 1;
        label.classList.add("active");
      }
      this.inFlight.set(key, token);
      const early = this.early.get(key);
      if (early) { this.early.delete(key); this.complete(token, early, now); }
    }
    this.trimInFlight();
    // An event in the log is its delivery to the dashboard: that row is the dashboard's receipt.
    const key = `${envelope.event_id}|dashboard`;
    const own = this.inFlight.get(key);
    if (own) this.complete(own, {outcome: "ok", context: "dashboard", event_id: envelope.event_id}, now);
  }

  addReceipt(receipt, now) {
    if (!receipt) return;
    if (receipt.kind === "command") return this.addCommand(receipt, now);
    if (receipt.kind === "reply") return this.addReply(receipt, now);
    const node = this.nodes.get(receipt.context);
    if (node) {
      node.pulseAt = now;
      if (receipt.outcome === "failed" || receipt.outcome === "dead") node.failAt = now;
      node.last.textContent = `${receipt.outcome} ${receipt.event_type}`;
    }
    const key = `${receipt.event_id}|${receipt.context}`;
    const token = this.inFlight.get(key);
    if (token) this.complete(token, receipt, now);
    else if (receipt.outcome !== "failed") this.keepEarly(key, receipt);
    this.onDelivery(receipt);
  }

  /** A command sent (receipt kind "command"): a token from its sender to its owner, waiting there. */
  addCommand(receipt, now) {
    const sender = this.nodes.get(receipt.producer);
    if (sender) { sender.pulseAt = now; sender.last.textContent = `sent ${receipt.event_type}`; }
    const edge = this.lane(receipt.producer, receipt.context, QUERIES.has(receipt.event_type) ? "query" : "command");
    const key = `${receipt.event_id}|command`;
    if (!edge || this.inFlight.has(key)) return;
    const token = {key, edge, command: true, startedAt: now, doneAt: null, outcome: null};
    edge.tokens.add(token);
    edge.activeAt = now;
    edge.label.textContent = `${receipt.event_type} ⇄`;
    edge.path.dataset.commands = String(Number(edge.path.dataset.commands || 0) + 1);
    this.inFlight.set(key, token);
    const early = this.early.get(key);
    if (early) { this.early.delete(key); this.addReply(early, now); }
    this.trimInFlight();
  }

  /** Its reply (ok / refused / timeout / unsent / expired / invalid): back to the sender, or red where it waited. */
  addReply(receipt, now) {
    const timedOut = receipt.outcome === "timeout" || receipt.outcome === "unsent"; // the sender's side failed
    const node = this.nodes.get(timedOut ? receipt.producer : receipt.context);
    if (node) {
      node.pulseAt = now;
      if (BAD_REPLIES.has(receipt.outcome)) node.failAt = now;
      node.last.textContent = `${receipt.outcome} ${receipt.event_type}`;
    }
    const key = `${receipt.event_id}|command`;
    const token = this.inFlight.get(key);
    if (token && token.doneAt === null) {
      token.edge.path.dataset.lastReply = receipt.outcome; // what the page tells a test (or a curious reader)
      token.outcome = receipt.outcome;
      token.doneAt = now;
    } else if (!token) this.keepEarly(key, receipt);
    this.onDelivery(receipt);
  }

  /** Bounded: the oldest deliveries in flight give way (their receipt may never come). */
  trimInFlight() {
    while (this.inFlight.size > MAX_IN_FLIGHT) this.drop(this.inFlight.values().next().value);
  }

  /** A receipt (or reply) that came before its event (or command), kept for it; the oldest give way. */
  keepEarly(key, receipt) {
    this.early.set(key, receipt);
    while (this.early.size > MAX_EARLY) this.early.delete(this.early.keys().next().value);
  }

  complete(token, receipt, now) {
    if (receipt.outcome === "failed") { token.failedAt = now; return; } // a retry follows
    token.outcome = receipt.outcome;
    token.doneAt = now;
  }

  drop(token) {
    if (!this.inFlight.delete(token.key)) return;
    token.edge.tokens.delete(token);
    if (token.command && !token.edge.tokens.size) token.edge.label.textContent = "";
    if (token.label && --token.label.inFlight <= 0) token.label.classList.remove("active");
  }

  setQueues(queues) {
    for (const node of this.nodes.values()) {
      if (node.kind === "origin") continue;
      const name = node.name;
      const depth = queues.depths ? queues.depths[name] : undefined;
      node.handled = queues.handled?.[name] ?? node.handled;
      node.failures = queues.failures?.[name] ?? node.failures;
      if (node.failed) {
        node.stats.textContent = `queue ${depth ?? "?"} · handled ${node.handled}`;
        node.failed.textContent = `failed ${node.failures}`;
      } else { // the dashboard's bar has room for one line
        node.stats.textContent = `queue ${depth ?? "?"} · handled ${node.handled} · failed ${node.failures}`;
      }
      // The workers' own word (online / paused / offline) when the server has it, else what
      // the receipts tell: recent ones mean online, messages waiting with none mean offline.
      const consumer = queues.consumers ? queues.consumers[name] : undefined;
      const online = queues.online ? queues.online[name] : null;
      const state = consumer === "paused" || consumer === "offline" ? consumer
        : online === true ? "online" : online === false ? "offline" : consumer === "online" ? "online" : "idle";
      node.online.setAttribute("class", `online-dot ${state}`);
      node.onlineText.textContent = `consumer ${state}`;
      node.g.dataset.online = state;
      node.g.dataset.queue = depth ?? "";
      node.g.dataset.handled = node.handled;
      node.g.dataset.failures = node.failures;
      node.g.classList.toggle("failing", node.failures > 0);
      this.setSubscription(node, queues.subscriptions?.[name]);
    }
  }

  /** Detached: greyed out. Replaying after an attach: tokens stream from the log into it. */
  setSubscription(node, subscription) {
    if (!subscription) return;
    const {attached, replaying, lag = 0} = subscription;
    node.g.dataset.attached = attached ? "1" : "0";
    node.g.dataset.lag = String(lag);
    node.g.classList.toggle("detached", !attached);
    if (!attached) node.last.textContent = `detached · ${lag} behind`;
    else if (replaying) node.last.textContent = `replaying · lag ${lag}`;
    if (!attached || !replaying || !lag) return;
    const edge = this.lane("dashboard", node.name, "replay");
    if (!edge) return;
    edge.path.removeAttribute("marker-start");
    const now = performance.now();
    for (let i = 0; i < Math.min(lag, 3); i += 1) { // a token is a few events: a stream, not a count
      const key = `replay|${node.name}|${now}|${i}`;
      const token = {key, edge, startedAt: now, doneAt: now + TRAVEL_MS + i * 200, outcome: "ok"};
      edge.tokens.add(token);
      edge.activeAt = now;
      this.inFlight.set(key, token);
    }
  }

  // --- drawing -------------------------------------------------------------------------
  start() {
    if (this.running) return;
    this.running = true;
    // ~30 frames a second is smooth enough, and half the painting of 60 on a busy machine.
    let last = 0;
    const frame = (now) => {
      if (now - last >= 30) { last = now; this.draw(now); }
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  draw(now) {
    for (const edge of this.edges.values()) this.drawEdge(edge, now);
    for (const edge of this.lanes.values()) if (edge) this.drawEdge(edge, now);
    for (const node of this.nodes.values()) {
      const pulsing = now - node.pulseAt < 300;
      if (pulsing !== node.pulsing) { node.pulsing = pulsing; node.g.classList.toggle("pulse", pulsing); }
      const failing = now - node.failAt < 1500;
      if (failing !== node.failingNow) { node.failingNow = failing; node.g.classList.toggle("flash-fail", failing); }
    }
  }

  /** Where a command's token is and how it looks: out to the owner, then back (its reply) or red in place. */
  commandState(token, now) {
    if (token.doneAt === null) {
      if (now - token.startedAt > STALE_MS) return null;
      return {progress: 0.86 * Math.min(1, (now - token.startedAt) / TRAVEL_MS), state: "command"};
    }
    const out = 0.86 * Math.min(1, (token.doneAt - token.startedAt) / TRAVEL_MS); // where the reply found it
    if (["timeout", "unsent", "expired", "invalid"].includes(token.outcome)) {
      return now - token.doneAt > FAIL_HOLD_MS ? null : {progress: out, state: "dead"};
    }
    const t = (now - token.doneAt) / TRAVEL_MS;
    if (t >= 1) return null;
    return {progress: Math.max(0.02, out * (1 - t)), state: token.outcome === "refused" ? "reply-bad" : "reply-ok"};
  }

  drawEdge(edge, now) {
    if (!edge.tokens.size && !edge.shown && !edge.busy) return; // idle: touch nothing
    let shown = 0;
    for (const token of edge.tokens) {
      let progress, look = null;
      if (token.command) {
        look = this.commandState(token, now);
        if (look === null) { this.finish(token); continue; }
        progress = look.progress;
      } else if (token.doneAt !== null) {
        const t = (now - token.doneAt) / (token.outcome === "dead" ? FAIL_HOLD_MS : FINISH_MS);
        if (t >= 1) { this.finish(token); continue; }
        progress = Math.min(1, 0.86 + 0.14 * t * 3);
      } else {
        if (now - token.startedAt > STALE_MS) { this.finish(token); continue; }
        progress = 0.86 * Math.min(1, (now - token.startedAt) / TRAVEL_MS);
      }
      if (shown >= MAX_DOTS) continue;
      const dot = edge.dots[shown];
      shown += 1;
      const point = edge.path.getPointAtLength(progress * edge.length);
      dot.setAttribute("cx", point.x.toFixed(1));
      dot.setAttribute("cy", point.y.toFixed(1));
      const state = look ? look.state : token.doneAt === null ? (token.failedAt ? "retrying" : "moving")
        : (token.outcome === "ok" || token.outcome === "duplicate" ? "done" : "dead");
      setClass(dot, `dot ${state}`);
    }
    for (let i = shown; i < (edge.shown || 0); i += 1) setClass(edge.dots[i], "dot hidden");
    edge.shown = shown;
    const extra = edge.tokens.size - shown;
    const more = extra > 0 ? `+${extra}` : "";
    if (edge.more.textContent !== more) {
      edge.more.textContent = more;
      setClass(edge.more, extra > 0 ? "edge-more" : "edge-more hidden");
    }
    const busy = edge.tokens.size > 0 || now - edge.activeAt < 400;
    if (busy !== edge.busy) { edge.busy = busy; edge.path.classList.toggle("busy", busy); }
  }

  finish(token) {
    this.drop(token);
  }
}
