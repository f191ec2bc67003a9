"""Tracing off (no OTEL_EXPORTER_OTLP_ENDPOINT): no SDK provider, no exporter, no Celery
instrumentation, envelopes without trace fields; each hook hands the call through unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The ASGI process and a worker's pool process as they start (twice: set up once), then the
# hooks of a publish.
SCRIPT = """
import json, sys
import config.asgi
from config import celery
celery._trace_pool_process()
celery._trace_pool_process()
from celery import signals
from opentelemetry import trace
from eventbus import tracing
with tracing.publishing(object(), "orders") as fields:
    pass
result = {
    "enabled": tracing.enabled(),
    "provider": type(trace.get_tracer_provider()).__name__,
    # (redis-py imports parts of the SDK for its own metrics when it is installed: not these.)
    "sdk_loaded": sorted(m for m in sys.modules if m.startswith(
        ("opentelemetry.sdk.trace", "opentelemetry.exporter", "opentelemetry.instrumentation.django",
         "opentelemetry.instrumentation.celery"))),
    # Celery's instrumentation connects to its signals: once per process, only when on.
    "celery_receivers": sorted(r.__qualname__ for signal in (signals.before_task_publish, signals.task_prerun)
                               for _, r in signal.receivers if "Instrumentor" in getattr(r, "__qualname__", "")),
    "threads": sorted(t.name for t in __import__("threading").enumerate() if "Otel" in t.name or "Batch" in t.name),
    "fields": fields, "current": tracing.current_fields(),
    "django_middleware": [m for m in __import__("django.conf").conf.settings.MIDDLEWARE if "opentelemetry" in m],
}
print("RESULT=" + json.dumps(result))
"""


def run(env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(next(x for x in done.stdout.splitlines() if x.startswith("RESULT="))[len("RESULT="):])


def test_without_an_endpoint_no_provider_is_installed_and_hooks_do_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["EVENTFLOW_DATA_DIR"] = str(tmp_path)
    off = run(env)
    assert off == {"enabled": False, "provider": "ProxyTracerProvider", "sdk_loaded": [], "threads": [],
                   "fields": {}, "current": {}, "django_middleware": [], "celery_receivers": []}
    # The same script does see tracing when the endpoint is set (nothing listens: spans are dropped).
    on = run({**env, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_EXPORTER_OTLP_TIMEOUT": "1"})
    assert on["enabled"] is True and on["provider"] == "TracerProvider"
    assert on["django_middleware"] and on["sdk_loaded"] and on["threads"]
    assert "opentelemetry.instrumentation.celery" in on["sdk_loaded"]
    assert on["celery_receivers"] == ["CeleryInstrumentor._trace_before_publish", "CeleryInstrumentor._trace_prerun"]
