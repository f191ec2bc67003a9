// Follow one flow: only the tokens of one order (or correlation id) are drawn, the rest dims.
//
// An event belongs to the flow when its payload's order_id or its correlation_id is the id
// followed; once one event matched by order_id, its correlation id joins, so the flow's
// events without an order_id follow too. The graph asks `accepts(envelope)` before it draws
// an event (graph.js); the edges and nodes a followed event travels get the class `in-flow`
// and everything else dims (CSS, `.graph.following`). `?follow=<id>` on `/` starts with it
// (the trace page links there).

export class FollowFlow {
  constructor(graph, {input, form, clearButton, status}) {
    this.graph = graph;
    this.input = input;
    this.status = status;
    this.id = null;
    this.ids = new Set();
    graph.accepts = (envelope) => this.accepts(envelope);
    form.addEventListener("submit", (event) => { event.preventDefault(); this.follow(input.value); });
    clearButton.addEventListener("click", () => this.follow(""));
    const start = new URLSearchParams(location.search).get("follow");
    if (start) this.follow(start);
  }

  follow(id) {
    id = String(id || "").trim();
    this.id = id || null;
    this.ids = new Set(id ? [id] : []);
    this.input.value = id;
    this.graph.svg.classList.toggle("following", Boolean(id));
    this.graph.svg.dataset.following = id;
    for (const element of this.graph.svg.querySelectorAll(".in-flow")) element.classList.remove("in-flow");
    // Tokens of other flows already in flight go; the followed flow's next events draw.
    if (id) for (const token of [...this.graph.inFlight.values()]) if (token.envelope && !this.matches(token.envelope)) this.graph.drop(token);
    this.status.textContent = id ? `following ${id}` : "";
    const url = new URL(location.href);
    if (id) url.searchParams.set("follow", id); else url.searchParams.delete("follow");
    history.replaceState(null, "", url);
  }

  matches(envelope) {
    if (this.ids.has(envelope.correlation_id)) return true;
    if (this.ids.has(envelope.payload?.order_id)) {
      this.ids.add(envelope.correlation_id);
      return true;
    }
    return false;
  }

  accepts(envelope) {
    if (!this.id) return true;
    if (!this.matches(envelope)) return false;
    this.graph.nodes.get(envelope.producer)?.g.classList.add("in-flow");
    for (const {edge, subscriber} of this.graph.routes.get(envelope.event_type) || []) {
      edge?.path.classList.add("in-flow");
      this.graph.nodes.get(subscriber)?.g.classList.add("in-flow");
      if (edge) this.graph.nodes.get(edge.from)?.g.classList.add("in-flow");
    }
    return true;
  }
}
