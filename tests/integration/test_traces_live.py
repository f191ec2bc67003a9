"""OpenTelemetry on the real `make run` stack: every process exports its spans over OTLP/HTTP to
a tiny receiver this test runs, and one order is one trace whose parent links follow causation."""

from __future__ import annotations

import pytest

from tests.support.otlp import SERVER, OtlpReceiver, traced_run_stack
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live]

TRACE_URL = "http://jaeger.example:16686/trace/{trace_id}"
PRODUCER = 4  # opentelemetry.proto.trace.v1.Span.SpanKind.SPAN_KIND_PRODUCER


@pytest.fixture
def receiver():
    running = OtlpReceiver()
    yield running
    running.close()


@pytest.fixture
def traced_stack(tmp_path, receiver):
    stack = traced_run_stack(tmp_path, receiver, EVENTFLOW_TRACE_URL=TRACE_URL)
    try:
        yield stack.start()
    finally:
        stack.close()


def ancestors(span: dict, by_id: dict[str, dict]) -> list[dict]:
    """The span and its parents up to the root, root first (fails on a parent never exported)."""
    chain = [span]
    while chain[-1]["parent_id"]:
        parent = by_id.get(chain[-1]["parent_id"])
        assert parent is not None, f"{chain[-1]['name']}'s parent {chain[-1]['parent_id']} was never exported"
        chain.append(parent)
    return chain[::-1]


def test_one_order_is_one_trace_from_the_post_to_order_confirmed_across_processes(traced_stack, receiver):
    def stocked_sku():  # the orders view of the demo catalog fills from InventoryChanged after start
        status, body = traced_stack.request("/api/products/")
        return next((p["sku"] for p in body.get("products", []) if int(p.get("available", 0)) > 0), None)

    assert traced_stack.healthz()[0] == 200  # a probe: not traced
    order_id = traced_stack.place_order(wait_for(stocked_sku, timeout=120, interval=0.5, message="a product in stock"))

    def confirmed():
        spans = receiver.snapshot()
        names = {s["name"] for s in spans}
        done = "publish OrderConfirmed" in names and "deliver OrderConfirmed to inventory" in names
        return spans if done else None

    spans = wait_for(confirmed, timeout=180, interval=0.5, message=f"the spans of order {order_id} up to OrderConfirmed")
    by_id = {s["span_id"]: s for s in spans}

    # The POST is the root; its trace is the order's.
    assert [s["name"] for s in spans if s["kind"] == SERVER and "healthz" in s["name"]] == []
    posts = [s for s in spans if s["kind"] == SERVER and s["name"].startswith("POST") and "api/orders" in s["name"]]
    assert len(posts) == 1, [s["name"] for s in spans if s["kind"] == SERVER]
    post = posts[0]
    assert post["parent_id"] is None
    trace_id = post["trace_id"]
    order_spans = [s for s in spans if s["trace_id"] == trace_id]

    # Every span that names this order's flow (its correlation id) is in that one trace.
    requested = [s for s in spans if s["name"] == "publish OrderRequested"]
    assert len(requested) == 1 and requested[0]["trace_id"] == trace_id
    def logged_trace():  # the dashboard logs OrderRequested on its own worker, maybe a moment later
        status, body = traced_stack.request(f"/api/traces/{order_id}/")
        return body if status == 200 and body.get("trace_id") else None

    logged = wait_for(logged_trace, timeout=60, interval=0.5, message="the dashboard's trace naming its trace id")
    correlation = logged["correlation_ids"][0]
    of_the_order = [s for s in spans if s["attributes"].get("messaging.message.conversation_id") == correlation]
    assert {s["trace_id"] for s in of_the_order} == {trace_id}
    assert {s["name"] for s in of_the_order} >= {
        "send OrderRequested", "deliver OrderRequested to orders", "deliver OrderRequested to inventory",
        "deliver OrderRequested to dashboard", "deliver PaymentRequested to payments",
        "deliver PaymentAuthorized to orders", "deliver OrderConfirmed to inventory",
    }

    # The parent links follow causation: OrderConfirmed's publish descends, through each
    # event's publish, delivery and handler, from the POST.
    confirmed_publish = next(s for s in order_spans if s["name"] == "publish OrderConfirmed")
    chain = ancestors(confirmed_publish, by_id)
    assert chain[0] is post
    published = [s["name"].removeprefix("publish ") for s in chain if s["name"].startswith("publish ")]
    assert published[0] == "OrderRequested" and published[-1] == "OrderConfirmed"
    # Orders decides on whichever of its two answers arrives last: the chain runs through it.
    assert published[-2] in ("StockReserved", "PaymentAuthorized"), published
    if published[-2] == "PaymentAuthorized":
        assert "PaymentRequested" in published, published
    for span, parent in zip(chain[2:], chain[1:]):
        if span["name"].startswith("deliver "):  # a delivery is the child of the publish its envelope carries
            assert parent["name"] == "publish " + span["name"].split()[1], (parent["name"], span["name"])
        if span["name"].startswith("publish ") and span is not chain[1]:
            assert parent["name"].startswith("handle "), (parent["name"], span["name"])
    # Each delivery of OrderRequested hangs from that one publish, like the relay's send.
    for span in of_the_order:
        if span["name"].startswith(("deliver OrderRequested", "send OrderRequested")):
            assert by_id[span["parent_id"]] is requested[0]

    # Across processes: the web process and at least two workers, each naming itself.
    processes = {(s["resource"]["service.name"], s["resource"]["process.pid"]) for s in chain}
    assert len(processes) >= 3, processes
    names = {s["resource"]["eventflow.process"] for s in order_spans}
    assert {"web", "worker-orders", "worker-inventory", "worker-payments"} <= names, names

    # The dashboard's trace of the order names that trace id and links it (EVENTFLOW_TRACE_URL).
    assert logged["trace_id"] == trace_id
    assert logged["trace_url"] == TRACE_URL.format(trace_id=trace_id)

    # Celery's instrumentation, beside the project's spans: the relay's send hands each delivery
    # to Celery (apply_async/eventbus.deliver, the send's child, its context in the message's
    # headers) and the worker's pool process runs it (run/eventbus.deliver, that publish's child).
    # The delivery spans still hang from the envelope's publish, checked above. (The dashboard
    # runs its batches outside Celery's task: no run span of its own to expect.)
    def celery_runs():
        spans = receiver.snapshot()
        by_id = {s["span_id"]: s for s in spans}
        runs = [s for s in spans if s["trace_id"] == trace_id and s["name"] == "run/eventbus.deliver"
                and by_id.get(s["parent_id"] or "", {}).get("name") == "apply_async/eventbus.deliver"]
        workers = {s["resource"]["eventflow.process"] for s in runs}
        return (spans, runs) if {"worker-orders", "worker-inventory", "worker-payments"} <= workers else None

    spans, runs = wait_for(celery_runs, timeout=60, interval=0.5, message="Celery's run spans in the order's trace")
    by_id = {s["span_id"]: s for s in spans}
    for run in runs:
        chain = ancestors(run, by_id)
        assert chain[0] is post, [s["name"] for s in chain]
        sent, send = chain[-2], chain[-3]
        assert sent["kind"] == PRODUCER and sent["attributes"].get("celery.action") == "apply_async"
        assert send["name"].startswith("send "), [s["name"] for s in chain]
        assert sent["resource"]["process.pid"] == send["resource"]["process.pid"]
    # The first hop crosses from the web process: the POST's own send of OrderRequested.
    first = [run for run in runs if run["resource"]["eventflow.process"] == "worker-orders"
             and by_id[by_id[run["parent_id"]]["parent_id"]]["name"] == "send OrderRequested"]
    assert first and {by_id[run["parent_id"]]["resource"]["eventflow.process"] for run in first} == {"web"}

    # The command-driven mode: each command's span in the sender (inside the POST), its
    # execution in the owner's worker as that span's child, and the reply inside the execution.
    status, body = traced_stack.request("/api/orders/", {
        "customer": {"name": "Run Stack", "email": "run@example.com"},
        "lines": [{"sku": wait_for(stocked_sku, timeout=60, interval=0.5, message="a product in stock"), "qty": 1}],
        "payment_token": "tok_visa", "mode": "command",
    })
    assert status == 200 and body["status"] == "CONFIRMED", (status, body)

    def commands_exported():  # the replies, and every span above them (the web process exports the POST last)
        spans = receiver.snapshot()
        by_id = {s["span_id"]: s for s in spans}
        replies = [s for s in spans if s["name"] in ("reply ReserveStock", "reply AuthorizePayment")]

        def rooted(span):
            while span is not None and span["parent_id"]:
                span = by_id.get(span["parent_id"])
            return span is not None

        done = len({s["name"] for s in replies}) == 2 and all(rooted(s) for s in replies)
        return spans if done else None

    spans = wait_for(commands_exported, timeout=120, interval=0.5, message="the spans of the command-driven order")
    by_id = {s["span_id"]: s for s in spans}
    for command, owner in (("ReserveStock", "worker-inventory"), ("AuthorizePayment", "worker-payments")):
        reply = next(s for s in spans if s["name"] == f"reply {command}")
        chain = ancestors(reply, by_id)
        assert [s["name"] for s in chain[-3:]] == [f"command {command}", f"execute {command}", f"reply {command}"]
        assert chain[0]["kind"] == SERVER and chain[0]["name"].startswith("POST") and chain[0]["trace_id"] != trace_id
        assert chain[-2]["resource"]["eventflow.process"] == owner
        assert chain[-3]["resource"]["eventflow.process"] == "web"

    # Celery's spans of each command: its send inside the command's span, its run in the owner.
    def command_runs():
        spans = receiver.snapshot()
        by_id = {s["span_id"]: s for s in spans}
        found = {}
        for run in (s for s in spans if s["name"] == "run/eventbus.command" and s["parent_id"] in by_id):
            sent = by_id[run["parent_id"]]
            command = by_id.get(sent["parent_id"] or "")
            if sent["name"] == "apply_async/eventbus.command" and command and command["name"].startswith("command "):
                found[command["name"]] = (run, command)
        return found if {"command ReserveStock", "command AuthorizePayment"} <= set(found) else None

    found = wait_for(command_runs, timeout=60, interval=0.5, message="Celery's run spans of the commands")
    for command, owner in (("ReserveStock", "worker-inventory"), ("AuthorizePayment", "worker-payments")):
        run, sender = found[f"command {command}"]
        assert run["trace_id"] == sender["trace_id"] and run["resource"]["eventflow.process"] == owner

