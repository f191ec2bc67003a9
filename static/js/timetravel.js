// Time travel: the time bar under the graph replays any past window of the log.
//
// The strip shows events per second of the last 5 minutes (GET /api/timeseries/); dragging on
// it picks a window (or "last minute"). Any older window the log still retains is picked with the
// from/to inputs (local time; GET /api/replay/?part=bounds says since when the log holds entries,
// and a window the API refuses shows its 400 message). GET /api/replay/ gives the views and counters at the
// window's start and the entries paged by seq (the first, small page starts the replay, the
// others load meanwhile), and beside them (&part=frames) a frame of edge figures and counters
// per second. The replay clock runs at
// 1×, 4× or 16× (or steps one entry at a time): each entry is handed to the graph when the
// clock passes the time the log recorded it, in seq order; the view changes up to the newest
// entry handed are folded into the panels (only those: the panels show each context's view as
// it was, so "rows that differ" is the lag of that moment); the frame of the second shows the
// edge figures and the node counters. Live entries keep arriving meanwhile and are not drawn;
// leaving the replay rereads the live views (onLeave) and the graph goes on live, no reload.

import {clear, getJSON, h, s} from "./dom.js";

const SPEEDS = [1, 4, 16];
const STRIP_W = 1000, STRIP_H = 48;
const POLL_MS = 5000;
const FIRST_PAGE = 2000;

function iso(ms) {
  return new Date(ms).toISOString();
}

/** A datetime-local input's value (local time, to the second) for a moment. */
function localInput(ms) {
  return new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 19);
}

/** getJSON, but a refusal (400) throws the API's own messages. */
async function askJSON(url) {
  const response = await fetch(url, {headers: {Accept: "application/json"}, credentials: "same-origin"});
  if (response.ok) return response.json();
  let message = `HTTP ${response.status}`;
  try {
    const body = await response.json();
    if (body.errors) message = Object.values(body.errors).flat().join("; ");
  } catch { /* not JSON: the status says it */ }
  const error = new Error(message);
  error.status = response.status;
  throw error;
}

export class TimeTravel {
  constructor(root, {graph, panels, edgeMetrics, onLeave = () => {}}) {
    Object.assign(this, {root, graph, panels, edgeMetrics, onLeave});
    this.active = false;
    this.playing = false;
    this.speed = 1;
    this.stats = {};
    this.build();
    this.pollStrip();
    this.readBounds();
    setInterval(() => { if (!this.active) this.pollStrip(); }, POLL_MS);
    requestAnimationFrame((now) => this.tick(now));
  }

  build() {
    this.strip = s("svg", {class: "timebar-strip", viewBox: `0 0 ${STRIP_W} ${STRIP_H}`, preserveAspectRatio: "none",
                           role: "img", "aria-label": "events per second, last 5 minutes: drag to pick a window to replay"});
    this.bars = s("g");
    this.pick = s("rect", {class: "pick", x: 0, y: 0, width: 0, height: STRIP_H, visibility: "hidden"});
    this.cursor = s("line", {class: "cursor", x1: 0, x2: 0, y1: 0, y2: STRIP_H, visibility: "hidden"});
    this.strip.append(this.bars, this.pick, this.cursor);
    const button = (label, onclick, attrs = {}) => h("button", {type: "button", onclick, ...attrs}, label);
    this.playButton = button("play", () => this.setPlaying(!this.playing), {id: "replay-play", disabled: true});
    this.speedButtons = SPEEDS.map((speed) => button(`${speed}×`, () => this.setSpeed(speed),
      {class: speed === 1 ? "active" : "", dataset: {speed: String(speed)}}));
    this.status = h("span", {id: "timebar-status", class: "muted", dataset: {mode: "live"}}, "live");
    const time = (id, label) => h("input", {type: "datetime-local", id, step: 1, "aria-label": label});
    this.startInput = time("replay-start", "start of the window to replay (local time)");
    this.endInput = time("replay-end", "end of the window to replay (local time)");
    this.retained = h("span", {id: "timebar-retained", class: "muted"});
    this.problem = h("span", {id: "timebar-problem", class: "reason", role: "alert"});
    // novalidate: a window the inputs' bounds rule out goes to the API all the same, which says why (400).
    const picker = h("form", {class: "timebar-window small", novalidate: true, onsubmit: (event) => { event.preventDefault(); this.replayInputs(); }},
      "or any older window (local time): from ", this.startInput, " to ", this.endInput,
      h("button", {type: "submit", id: "replay-window"}, "replay"), this.retained, this.problem);
    picker.addEventListener("focusin", () => this.readBounds());
    const controls = h("div", {class: "timebar-controls small"},
      button("replay the last minute", () => this.lastMinute(), {id: "replay-last-minute"}),
      this.playButton, button("step", () => this.step(), {id: "replay-step"}), ...this.speedButtons,
      button("back to live", () => this.leave(), {id: "replay-leave"}), this.status);
    clear(this.root).append(h("p", {class: "muted small"}, "Time travel: drag on the strip to replay a window of the last 5 minutes, or pick any older one below"),
      this.strip, controls, picker);
    this.strip.addEventListener("pointerdown", (event) => this.dragStart(event));
    this.strip.addEventListener("pointermove", (event) => this.dragMove(event));
    this.strip.addEventListener("pointerup", (event) => this.dragEnd(event));
  }

  // --- the strip -----------------------------------------------------------------------

  async pollStrip() {
    let body;
    try { body = await getJSON("/api/timeseries/"); } catch { return; }
    this.stripStart = Date.parse(body.start);
    this.stripEnd = Date.parse(body.now);
    const values = body.events_per_second;
    const max = Math.max(1, ...values);
    const width = STRIP_W / values.length;
    clear(this.bars);
    values.forEach((v, i) => {
      const height = (v / max) * (STRIP_H - 4);
      this.bars.append(s("rect", {class: "bar", x: (i * width).toFixed(1), y: (STRIP_H - height).toFixed(1),
                                  width: Math.max(1, width - 1).toFixed(1), height: height.toFixed(1)}));
    });
  }

  timeAt(event) {
    const box = this.strip.getBoundingClientRect();
    const share = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    return this.stripStart + share * (this.stripEnd - this.stripStart);
  }

  xOf(ms) {
    return ((ms - this.stripStart) / (this.stripEnd - this.stripStart)) * STRIP_W;
  }

  dragStart(event) {
    if (!this.stripStart) return;
    this.strip.setPointerCapture(event.pointerId);
    this.dragFrom = this.timeAt(event);
    this.showPick(this.dragFrom, this.dragFrom);
  }

  dragMove(event) {
    if (this.dragFrom !== undefined) this.showPick(this.dragFrom, this.timeAt(event));
  }

  dragEnd(event) {
    if (this.dragFrom === undefined) return;
    const [a, b] = [this.dragFrom, this.timeAt(event)].sort((x, y) => x - y);
    this.dragFrom = undefined;
    if (b - a >= 1000) this.replay(a, b);
  }

  showPick(a, b) {
    if (!this.stripStart) return;
    const [x1, x2] = [this.xOf(a), this.xOf(b)].map((x) => Math.min(STRIP_W, Math.max(0, x))).sort((x, y) => x - y);
    this.pick.setAttribute("x", x1.toFixed(1));
    this.pick.setAttribute("width", Math.max(1, x2 - x1).toFixed(1));
    this.pick.setAttribute("visibility", x2 > 0 && x1 < STRIP_W ? "visible" : "hidden"); // older than the strip: none
  }

  // --- any window the log retains ------------------------------------------------------

  /** Since when the log holds entries: the inputs' bounds, and the last minute to start from. */
  async readBounds() {
    let body;
    try { body = await getJSON("/api/replay/?part=bounds"); } catch { return; }
    const now = Date.parse(body.now);
    for (const input of [this.startInput, this.endInput]) {
      input.max = localInput(now);
      if (body.retained_from) input.min = localInput(Date.parse(body.retained_from));
    }
    this.retained.textContent = body.retained_from
      ? `the log holds entries from ${new Date(body.retained_from).toLocaleString()}; at most ${body.max_seconds} s a window`
      : "the log is empty";
    if (!this.startInput.value && !this.endInput.value) {
      this.startInput.value = localInput(now - 60_000);
      this.endInput.value = localInput(now);
    }
  }

  /** Replay the window of the inputs; what the API refuses (reversed, too long, ended before
   * the log's oldest entry) shows its message. */
  replayInputs() {
    const startMs = Date.parse(this.startInput.value), endMs = Date.parse(this.endInput.value);
    if (Number.isNaN(startMs) || Number.isNaN(endMs)) {
      this.problem.textContent = "pick both a start and an end";
      return null;
    }
    return this.replay(startMs, endMs);
  }

  // --- replay --------------------------------------------------------------------------

  lastMinute() {
    const end = Date.now() - 500;
    return this.replay(end - 60_000, end);
  }

  async replay(startMs, endMs) {
    const asked = performance.now();
    const previous = this.token, token = (this.token = {});
    const base = `/api/replay/?start=${encodeURIComponent(iso(startMs))}&end=${encodeURIComponent(iso(endMs))}`;
    this.setStatus("loading the window…", {mode: "loading"});
    this.problem.textContent = "";
    // The frames (edge figures, counters) come beside a small first page: the replay starts on the page.
    const frames = getJSON(`${base}&part=frames`).catch(() => null);
    let first;
    try { first = await askJSON(`${base}&limit=${FIRST_PAGE}`); } catch (error) {
      if (this.token !== token) return;
      this.token = previous; // a replay under way goes on
      this.problem.textContent = `cannot replay this window: ${error.message}`;
      if (this.active) this.render();
      else this.setStatus("live", {mode: "live"});
      return;
    }
    if (this.token !== token) return;
    this.enter();
    this.showPick(startMs, endMs);
    this.startInput.value = localInput(startMs);
    this.endInput.value = localInput(endMs);
    Object.assign(this, {startMs, endMs, clock: startMs, entries: first.entries, changes: first.view_changes,
                         frames: [], next: 0, nextChange: 0, appliedSeq: first.from_seq - 1,
                         complete: first.next_after_seq === null});
    this.panels.setAll(first.views || {});
    this.panels.render();
    this.showFrame(first.counters);
    this.setPlaying(true);
    this.stats = {startMs: Math.round(performance.now() - asked), entries: first.entries.length, pages: 1};
    this.render();
    this.loadRest(base, first.next_after_seq, token);
    frames.then((body) => {
      if (this.token !== token || !body) return;
      this.frames = body.frames || [];
      this.stats.framesMs = Math.round(performance.now() - asked);
      this.showFrame();
    });
  }

  async loadRest(base, after, token) {
    while (after !== null && this.token === token) {
      let page;
      try { page = await getJSON(`${base}&after_seq=${after}`); } catch { await new Promise((r) => setTimeout(r, 1000)); continue; }
      if (this.token !== token) return;
      this.entries.push(...page.entries);
      this.changes.push(...page.view_changes);
      this.stats.entries = this.entries.length;
      this.stats.pages += 1;
      after = page.next_after_seq;
    }
    if (this.token === token) { this.complete = true; this.stats.loadedMs = Math.round(performance.now()); }
  }

  enter() {
    this.clearTokens();
    this.active = true;
    this.edgeMetrics.live = false;
    document.body.classList.add("replaying");
    this.playButton.disabled = false;
    this.cursor.setAttribute("visibility", "visible");
  }

  leave() {
    this.token = null;
    if (!this.active) return;
    this.active = false;
    this.setPlaying(false);
    this.clearTokens();
    this.edgeMetrics.live = true;
    document.body.classList.remove("replaying");
    this.playButton.disabled = true;
    this.cursor.setAttribute("visibility", "hidden");
    this.pick.setAttribute("visibility", "hidden");
    this.setStatus("live", {mode: "live", seq: "", time: ""});
    this.onLeave();
  }

  clearTokens() {
    for (const token of [...this.graph.inFlight.values()]) this.graph.drop(token);
    this.graph.early.clear();
  }

  setPlaying(playing) {
    this.playing = playing && this.active;
    this.playButton.textContent = this.playing ? "pause" : "play";
    this.lastTick = performance.now();
    if (this.active) this.render();
  }

  setSpeed(speed) {
    this.speed = speed;
    for (const button of this.speedButtons) button.classList.toggle("active", Number(button.dataset.speed) === speed);
    if (this.active) this.render();
  }

  step() {
    if (!this.active) return;
    this.setPlaying(false);
    const entry = this.entries[this.next];
    if (!entry) return;
    this.clock = Math.max(this.clock, Date.parse(entry.recorded_at));
    this.advance();
  }

  tick(now) {
    if (this.active && this.playing) {
      this.clock += (now - this.lastTick) * this.speed;
      this.lastTick = now;
      if (this.clock >= this.endMs) {
        this.clock = this.endMs;
        if (this.complete) this.setPlaying(false);
      }
      this.advance();
    }
    requestAnimationFrame((next) => this.tick(next));
  }

  /** Hand the graph every entry recorded up to the clock, fold the view changes up to the last
   * one, show the frame of that second. */
  advance() {
    const batch = [];
    while (this.next < this.entries.length && Date.parse(this.entries[this.next].recorded_at) <= this.clock) {
      batch.push(this.entries[this.next]);
      this.next += 1;
    }
    if (batch.length) {
      this.appliedSeq = batch[batch.length - 1].seq;
      this.graph.addEntries(batch);
    }
    let changed = false;
    while (this.nextChange < this.changes.length && this.changes[this.nextChange].seq <= this.appliedSeq) {
      const change = this.changes[this.nextChange];
      this.panels.merge(change.context, change.rows);
      this.nextChange += 1;
      changed = true;
    }
    if (changed) this.panels.render(); // now, so the panel shows the views of appliedSeq
    this.showFrame();
    this.render();
  }

  showFrame(counters = null) {
    const index = Math.floor(this.clock / 1000) - (this.frames[0]?.t ?? 0);
    const frame = this.frames[Math.min(this.frames.length - 1, Math.max(0, index))];
    const at = counters || frame;
    if (frame && frame !== this.shownFrame) {
      this.shownFrame = frame;
      this.edgeMetrics.setFigures(frame);
    }
    if (at) this.graph.setQueues({handled: at.handled || {}, failures: at.failures || {}, depths: {}});
  }

  render() {
    const done = this.clock >= this.endMs && this.complete;
    this.setStatus(`replay ${localInput(this.clock).slice(11, 19)} local time · seq ${this.appliedSeq} · ${this.speed}× · `
                   + `${this.next}/${this.entries.length}${this.complete ? "" : "+"} entries${done ? " · end of window" : ""}`,
                   {mode: "replay", seq: String(this.appliedSeq), time: iso(this.clock), playing: this.playing ? "1" : "0",
                    speed: String(this.speed), done: done ? "1" : "0"});
    if (this.stripStart) {
      const x = this.xOf(this.clock);
      this.cursor.setAttribute("x1", x.toFixed(1));
      this.cursor.setAttribute("x2", x.toFixed(1));
      this.cursor.setAttribute("visibility", x >= 0 && x <= STRIP_W ? "visible" : "hidden");
    }
  }

  setStatus(text, data = {}) {
    if (this.status.textContent !== text) this.status.textContent = text;
    Object.assign(this.status.dataset, data);
  }
}
