"""A tiny OpenTelemetry collector for tests: OTLP/HTTP on a free port, spans kept as dicts,
and a `make run` stack (tests/support/run_stack.py) that exports its traces to it."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.support.run_stack import RunStack

SERVER = 2  # opentelemetry.proto.trace.v1.Span.SpanKind.SPAN_KIND_SERVER


def _value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


class OtlpReceiver:
    """POST /v1/traces: ExportTraceServiceRequest protobufs, kept as plain span dicts."""

    def __init__(self) -> None:
        self.spans: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                receiver.add(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, request: ExportTraceServiceRequest) -> None:
        found = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append({
                        "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                        "parent_id": span.parent_span_id.hex() or None, "name": span.name, "kind": span.kind,
                        "attributes": {a.key: _value(a.value) for a in span.attributes}, "resource": resource,
                    })
        with self.lock:
            self.spans.extend(found)

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.spans)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def traced_run_stack(tmp_path, receiver: OtlpReceiver, **env: str) -> RunStack:
    """A `make run` stack (not started) whose processes export their spans to `receiver`."""
    # A short batch delay: spans leave each process within a fraction of a second.
    stack = RunStack(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, OTEL_BSP_SCHEDULE_DELAY="200", **env)
    stack.env.pop("OTEL_SERVICE_NAME", None)
    return stack


def order_trace_id(spans: list[dict]) -> str | None:
    """The trace of the (one) order placed: its POST /api/orders/ span's."""
    posts = [s for s in spans if s["kind"] == SERVER and s["name"].startswith("POST") and "api/orders" in s["name"]]
    return posts[0]["trace_id"] if len(posts) == 1 else None
