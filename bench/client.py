"""HTTP and websocket helpers: POST /api/orders/ like any API client, read /ws/events/ frames."""

from __future__ import annotations

import http.client
import json
import random
import threading
from urllib.parse import urlsplit

_local = threading.local()


def order_body(skus: list[str]) -> bytes:
    return json.dumps({
        "customer": {"name": "Bench Customer", "email": "bench@example.com"},
        "lines": [{"sku": random.choice(skus), "qty": 1}],
        "payment_token": "tok_visa",
    }).encode()


def post_order(base_url: str, skus: list[str], timeout: float = 30) -> dict:
    """POST one order on this thread's keep-alive connection; returns the 202 body or raises."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        parts = urlsplit(base_url)
        conn = _local.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("POST", "/api/orders/", body=order_body(skus), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        conn.close()
        _local.conn = None
        raise
    if response.status != 202:
        raise RuntimeError(f"POST /api/orders/ -> {response.status}: {body[:300]!r}")
    return json.loads(body)


def frame_items(raw: str | bytes) -> list[dict]:
    """The messages of one websocket frame (a batch is unpacked)."""
    frame = json.loads(raw)
    return frame["items"] if frame.get("type") == "batch" else [frame]


def ws_url(base_url: str) -> str:
    return base_url.replace("http", "ws", 1) + "/ws/events/"
