// `/`: the graph, the local view panels and the latest deliveries, fed by the stream.

import {EventStream, showConnection} from "./stream.js";
import {Graph} from "./graph.js";
import {ViewPanels} from "./panels.js";
import {Lab} from "./lab.js";
import {Charts} from "./charts.js";
import {EdgeMetrics} from "./edges.js";
import {FollowFlow} from "./follow.js";
import {TimeTravel} from "./timetravel.js";
import {formatMs, getJSON, h, msBetween, shortId} from "./dom.js";

const MAX_DELIVERIES = 14;
const list = document.getElementById("deliveries");
const rate = document.getElementById("rate");
const panels = new ViewPanels(document);
const lab = new Lab(document.getElementById("lab")).start();
const charts = new Charts(document.getElementById("charts")).start();
let pendingRows = [];

function deliveryRow(receipt) {
  const latency = msBetween(receipt.published_at, receipt.finished_at);
  return h("li", {class: `delivery outcome-${receipt.outcome}`,
                  dataset: {eventId: receipt.event_id, context: receipt.context, outcome: receipt.outcome,
                            correlationId: receipt.correlation_id, eventType: receipt.event_type}},
    h("a", {class: "what", href: `/events/?correlation_id=${encodeURIComponent(receipt.correlation_id)}`,
            title: `flow ${shortId(receipt.correlation_id)}`},
      h("span", {class: "mono"}, receipt.event_type), " → ", h("strong", {}, receipt.context)),
    h("span", {class: `badge outcome-${receipt.outcome}`}, receipt.outcome),
    h("span", {class: "muted num"}, formatMs(latency)),
    h("button", {type: "button", class: "follow", title: "follow this flow on the graph",
                 dataset: {correlationId: receipt.correlation_id}}, "follow"));
}

const graph = new Graph(document.getElementById("graph"), {
  onDelivery: (receipt) => {
    if (receipt.context === "dashboard") return; // it logs everything; the list shows the contexts at work
    pendingRows.push(receipt);
    if (pendingRows.length > MAX_DELIVERIES) pendingRows = pendingRows.slice(-MAX_DELIVERIES);
  },
});

// The list is redrawn at most once a frame, whatever the rate.
function flushRows() {
  if (pendingRows.length) {
    for (const receipt of pendingRows) list.prepend(deliveryRow(receipt));
    pendingRows = [];
    while (list.children.length > MAX_DELIVERIES) list.lastElementChild.remove();
  }
  requestAnimationFrame(flushRows);
}
requestAnimationFrame(flushRows);

const edgeMetrics = new EdgeMetrics(graph, {toggle: document.getElementById("edge-labels-toggle"),
                                           panel: document.getElementById("edge-panel")});
const follow = new FollowFlow(graph, {input: document.getElementById("follow-input"), form: document.getElementById("follow-form"),
                                      clearButton: document.getElementById("follow-clear"), status: document.getElementById("follow-status")});
// The live views again, e.g. after a gap or leaving a replay.
function rereadViews() {
  return getJSON("/api/contexts/").then((body) => {
    panels.setAll(Object.fromEntries((body.contexts || []).map((context) => [context.name, context.view || {}])));
  }).catch(() => {});
}
const timeTravel = new TimeTravel(document.getElementById("timebar"), {graph, panels, edgeMetrics, onLeave: rereadViews});
// A delivery's flow can be followed from the list.
list.addEventListener("click", (event) => {
  const button = event.target.closest("button.follow");
  if (button) follow.follow(button.dataset.correlationId);
});

let counted = 0;
setInterval(() => {
  rate.textContent = `${counted} entries/s · seq ${stream.lastSeq}`;
  rate.dataset.seq = String(stream.lastSeq);
  counted = 0;
}, 1000);

const stream = new EventStream({
  onState: showConnection,
  onSnapshot: (snapshot) => {
    graph.setTopology(snapshot.topology);
    if (!timeTravel.active) panels.setAll(snapshot.views);
  },
  onQueues: (queues) => {
    if (!timeTravel.active) graph.setQueues(queues); // a replay shows the counters of its moment
    lab.setQueues(queues);
    charts.setQueues(queues);
  },
  onEntries: (entries, {replay}) => {
    counted += entries.length;
    if (timeTravel.active) return; // live goes on meanwhile; leaving the replay rereads the views
    if (!replay) graph.addEntries(entries);
    for (const entry of entries) {
      if (entry.type === "event" && entry.envelope?.event_type === "InventoryChanged") panels.inventoryChanged(entry.envelope.payload);
    }
  },
  onEdges: (figures) => { if (edgeMetrics.live) edgeMetrics.setFigures(figures); },
  onViews: (views) => { if (!timeTravel.active) for (const [context, changes] of Object.entries(views)) panels.merge(context, changes); },
  // A gap may have swallowed a views message: read the views again.
  onRecovered: () => {
    if (timeTravel.active) return;
    getJSON("/api/contexts/").then((body) => {
      for (const context of body.contexts || []) panels.merge(context.name, context.view || {});
    }).catch(() => {});
  },
}).start();
window.eventflowStream = stream; // for the browser tests and the curious
window.eventflowGraph = graph;
window.eventflowLab = lab;
window.eventflowEdges = edgeMetrics;
window.eventflowFollow = follow;
window.eventflowTimeTravel = timeTravel;
