"""The trace page of an order placed on a `make run` stack that exports OpenTelemetry spans:
it names the order's trace id and links it to EVENTFLOW_TRACE_URL, in headless Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.otlp import OtlpReceiver, order_trace_id, traced_run_stack
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.live, pytest.mark.browser]

SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
TRACE_URL = "http://jaeger.example:16686/trace/{trace_id}"


def test_the_trace_page_names_and_links_the_orders_opentelemetry_trace(tmp_path, browser):
    receiver = OtlpReceiver()
    stack = traced_run_stack(tmp_path, receiver, EVENTFLOW_TRACE_URL=TRACE_URL)
    try:
        stack.start()

        def stocked_sku():
            status, body = stack.request("/api/products/")
            return next((p["sku"] for p in body.get("products", []) if int(p.get("available", 0)) > 0), None)

        order_id = stack.place_order(wait_for(stocked_sku, timeout=120, interval=0.5, message="a product in stock"))
        trace_id = wait_for(lambda: order_trace_id(receiver.snapshot()), timeout=60, interval=0.5,
                            message="the POST's span exported")
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        context.set_default_timeout(60_000)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(stack.url(f"/orders/{order_id}/"))
        page.locator("#otel-trace").wait_for(state="visible")
        assert page.locator("#otel-trace-id").text_content() == trace_id
        link = page.locator("#otel-trace-link")
        assert link.is_visible() and link.get_attribute("href") == TRACE_URL.format(trace_id=trace_id)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "trace-otel-link.png"))
        assert errors == []
        context.close()
    finally:
        stack.close()
        receiver.close()
