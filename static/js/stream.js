// The /ws/events/ stream: snapshot, then entries in seq order with no gap.
//
// Every entry (event or receipt) carries the log's global seq. A message whose
// seq jumps ahead means the server dropped some (channel-layer capacity, a
// reconnect): the stream holds live messages back, refetches the missing ones
// from /api/events/?after_seq=, then goes on. A `queues` message carries the
// log's newest seq; if we stay behind it across two of them, the tail was lost
// and we refetch too. A `views` message (no seq) carries the view rows that changed
// since the last one, by context, section and key; after a refetch the page reads the
// views again (onRecovered), since a frame lost with a gap may have held some.
// An `edges` message (once a second, no seq) carries the edge and node figures.
// Reconnects with exponential backoff and jitter.

import {getJSON} from "./dom.js";

const PAGE = 1000;
const MAX_RECOVERY_PAGES = 50;

export class EventStream {
  constructor({onSnapshot = () => {}, onEntries = () => {}, onQueues = () => {}, onViews = () => {},
               onEdges = () => {}, onRecovered = () => {}, onState = () => {}} = {}) {
    Object.assign(this, {onSnapshot, onEntries, onQueues, onViews, onEdges, onRecovered, onState});
    this.lastSeq = 0;
    this.held = [];
    this.recovering = false;
    this.attempt = 0;
    this.behindSince = null;
    this.socket = null;
    this.stopped = false;
    this.stats = {frames: 0, entries: 0, recoveries: 0, reconnects: 0};
  }

  start() {
    this.connect();
    return this;
  }

  setState(state, detail = "") {
    this.state = state;
    this.onState(state, detail);
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    this.setState(this.attempt ? "reconnecting" : "connecting");
    const socket = new WebSocket(`${scheme}://${location.host}/ws/events/`);
    this.socket = socket;
    socket.onmessage = (frame) => {
      let message;
      try { message = JSON.parse(frame.data); } catch { return; }
      this.stats.frames += 1;
      this.receive(message);
    };
    socket.onclose = () => {
      if (this.socket !== socket || this.stopped) return;
      this.attempt += 1;
      this.stats.reconnects += 1;
      const delay = Math.min(15000, 500 * 2 ** Math.min(this.attempt - 1, 5)) * (0.75 + Math.random() * 0.5);
      this.setState("offline", `retry in ${Math.round(delay / 1000)} s`);
      setTimeout(() => this.connect(), delay);
    };
  }

  receive(message) {
    switch (message.type) {
      case "snapshot": return this.snapshot(message);
      case "batch": return this.accept(message.items || []);
      default: return this.accept([message]);
    }
  }

  snapshot(message) {
    this.attempt = 0;
    this.onSnapshot(message);
    if (message.queues) this.onQueues(message.queues);
    const events = message.events || [];
    const first = events.length ? events[0].seq : message.seq + 1;
    if (this.lastSeq && first > this.lastSeq + 1) {
      // Reconnected after missing more than the snapshot holds: fill from the log.
      this.held.push(...events);
      this.recover();
    } else {
      this.deliver(events.filter((entry) => entry.seq > this.lastSeq), {replay: true});
      this.lastSeq = Math.max(this.lastSeq, message.seq || 0);
    }
    if (!this.recovering) this.setState("live");
  }

  accept(items) {
    const ready = [];
    for (const item of items) {
      if (item.type === "queues") { this.queues(item); continue; }
      if (item.type === "views") { this.onViews(item.views || {}); continue; }
      if (item.type === "edges") { this.onEdges(item); continue; }
      if (typeof item.seq !== "number") continue;
      if (this.recovering) { this.held.push(item); continue; }
      if (item.seq <= this.lastSeq) continue; // already have it (snapshot or refetch)
      if (item.seq !== this.lastSeq + 1) {
        this.deliver(ready.splice(0));
        this.held.push(item);
        this.recover();
        continue;
      }
      ready.push(item);
      this.lastSeq = item.seq;
    }
    this.deliver(ready);
  }

  queues(message) {
    this.onQueues(message.queues || {});
    // Behind the log's newest seq at two ticks in a row: what we miss will not come by itself.
    if (typeof message.seq === "number" && message.seq > this.lastSeq) {
      if (this.behindSince !== null && this.lastSeq < this.behindSince && !this.recovering) this.recover();
      this.behindSince = message.seq;
    } else {
      this.behindSince = null;
    }
  }

  /** Hand entries to the page in seq order; `replay` marks the snapshot's history (no animation). */
  deliver(items, meta = {replay: false}) {
    if (!items.length) return;
    this.stats.entries += items.length;
    this.onEntries(items, meta);
  }

  async recover() {
    if (this.recovering) return;
    this.recovering = true;
    this.stats.recoveries += 1;
    this.setState("recovering", `from seq ${this.lastSeq}`);
    for (let page = 0; page < MAX_RECOVERY_PAGES; page += 1) {
      let body;
      try {
        body = await getJSON(`/api/events/?after_seq=${this.lastSeq}&limit=${PAGE}`);
      } catch (error) {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        continue;
      }
      const items = body.items.filter((entry) => entry.seq > this.lastSeq);
      if (items.length) {
        this.lastSeq = items[items.length - 1].seq;
        this.deliver(items);
      }
      if (body.items.length < PAGE) break;
    }
    // What the log did not have is not coming (a seq skipped by a rolled-back insert).
    const held = this.held.splice(0).sort((a, b) => a.seq - b.seq).filter((entry) => entry.seq > this.lastSeq);
    const fresh = [];
    for (const entry of held) {
      if (entry.seq > this.lastSeq) { fresh.push(entry); this.lastSeq = entry.seq; }
    }
    this.deliver(fresh);
    this.recovering = false;
    this.behindSince = null;
    this.onRecovered();
    this.setState(this.socket && this.socket.readyState === WebSocket.OPEN ? "live" : "offline");
  }
}

/** Show the stream's state in the header's #connection badge. */
export function showConnection(state, detail) {
  const badge = document.getElementById("connection");
  if (!badge) return;
  badge.dataset.state = state;
  badge.textContent = detail ? `${state} · ${detail}` : state;
}
