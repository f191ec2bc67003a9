"""OpenTelemetry traces: one order is one trace, from the POST to OrderConfirmed, across processes.

On only where OTEL_EXPORTER_OTLP_ENDPOINT is set when the process starts (config/asgi.py, the
worker's pool processes in config/celery.py, the relay sweep): setup() then installs the SDK's
provider exporting over OTLP/HTTP. Otherwise no provider is installed and each hook below is
one `if` that hands back the call unchanged: tracing off costs nothing measurable.

The envelope carries the trace: publish() puts the W3C context of its span in the envelope
(traceparent, tracestate); the relay's send and every delivery start their spans as its
children, and a handler that publishes does so inside its delivery's span, so the chain
follows causation. Commands carry the same two fields in their message.

Celery's own instrumentation adds its spans beside these: `apply_async/<task>` where a
process sends a Celery message (the relay's send, a command), with the W3C context in the
message's headers, and `run/<task>` around the task in the worker's pool process, that
publish's child. The project's delivery and execute spans take their parent from the
envelope or command message, not from the current (Celery) span: both stay in the one trace.
"""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager, nullcontext

_tracer = None  # the SDK's tracer once setup() installed a provider; None = off
_provider = None
_propagator = None
_SpanKind = None
_celery = None  # Celery's instrumentor while it traces this process's Celery messages
_NO_FIELDS = nullcontext({})


def setup(process: str, *, http: bool = False, exporter=None) -> bool:
    """Install the SDK's tracer provider for this process (named `process`, e.g. "web",
    "worker-orders") when OTEL_EXPORTER_OTLP_ENDPOINT is set; with `http`, trace Django's
    requests too; Celery's messages, sent and run, always. Returns whether tracing is on. Call
    once at process start, after any fork (a worker: in each pool process).
    An `exporter` (an SDK SpanExporter) turns it on without the variable: the bench measures
    what tracing costs with one that drops every span."""
    global _tracer, _provider, _propagator, _SpanKind, _celery
    if _tracer is not None or not (exporter or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")):
        return _tracer is not None
    from celery import signals
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import SpanKind
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    # OTEL_SERVICE_NAME, when set, names every process; eventflow.process still tells them apart.
    resource = Resource.create({
        "service.name": os.environ.get("OTEL_SERVICE_NAME") or f"eventflow-{process}",
        "service.namespace": "eventflow",
        "eventflow.process": process,
        "process.pid": os.getpid(),
    })
    _provider = TracerProvider(resource=resource)
    # The exporter reads OTEL_EXPORTER_OTLP_* and the processor OTEL_BSP_* (batch size, delay).
    _provider.add_span_processor(BatchSpanProcessor(exporter or OTLPSpanExporter()))
    if exporter is None:
        trace.set_tracer_provider(_provider)
    _propagator = TraceContextTextMapPropagator()
    _SpanKind = SpanKind
    _tracer = _provider.get_tracer("eventflow")
    # Every traced process sends Celery messages (web, sweep, workers) and a worker's pool
    # process runs them: without the sender's apply_async span in the headers, a run span
    # would start a trace of its own. _register_tasks is connected first, so it runs first.
    signals.before_task_publish.connect(_register_tasks, weak=False)
    _celery = CeleryInstrumentor()
    _celery.instrument(tracer_provider=_provider)
    if http:
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        # Probes and scrapes (every few seconds) are no one's request worth a trace.
        DjangoInstrumentor().instrument(tracer_provider=_provider, excluded_urls=os.environ.get(
            "OTEL_PYTHON_DJANGO_EXCLUDED_URLS", "/healthz,/metrics,/static/"))
    return True


def _register_tasks(**_) -> None:
    """Before this process's first Celery send: the instrumentation keeps its apply_async span
    open until the message left only for a task registered here, and the web and the sweep send
    eventflow's tasks by name without importing them (a worker's autodiscovery does). Unknown,
    the span would end as soon as it began, before the send it stands for."""
    from celery import signals

    from eventbus import commands, tasks  # noqa: F401  (their @shared_task registers them)

    signals.before_task_publish.disconnect(_register_tasks)


def flush() -> None:
    """Export what is buffered (a pool process about to exit skips atexit)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=5000)


def off() -> None:
    """Stop tracing in this process, as if setup() had not run (the bench's on/off comparison)."""
    global _tracer, _provider, _celery
    if _celery is not None:
        from celery import signals

        _celery.uninstrument()
        signals.before_task_publish.disconnect(_register_tasks)
        _celery = None
    if _provider is not None:
        _provider.shutdown()
    _tracer = _provider = None


def enabled() -> bool:
    return _tracer is not None


# --- the W3C fields ------------------------------------------------------------------
def current_fields() -> dict:
    """traceparent (and tracestate) of the current span, for an envelope or a command; {} when off."""
    if _tracer is None:
        return {}
    carrier: dict = {}
    _propagator.inject(carrier)
    return carrier


def _parent(fields: dict):
    """The span context an envelope or command message carries (none: a new trace)."""
    return _propagator.extract({k: fields[k] for k in ("traceparent", "tracestate") if isinstance(fields.get(k), str)})


# --- hooks (each one line at its call site) -----------------------------------------------
def publishing(event, context: str):
    """Around publish(): a span whose context the new envelope carries; yields its fields."""
    if _tracer is None:
        return _NO_FIELDS
    return _publishing(type(event).__name__, context)


@contextmanager
def _publishing(event_type: str, context: str):
    with _tracer.start_as_current_span(f"publish {event_type}", kind=_SpanKind.PRODUCER, attributes={
        "messaging.system": "eventflow", "messaging.operation.type": "create",
        "messaging.destination.name": event_type, "eventflow.context": context,
    }):
        yield current_fields()


def traced_send(fn):
    """The relay's send of one envelope to its subscribers' queues, a child of its publish span."""
    @functools.wraps(fn)
    def send(subscribers, envelope, *args, **kwargs):
        if _tracer is None:
            return fn(subscribers, envelope, *args, **kwargs)
        subscribers = list(subscribers)
        with _tracer.start_as_current_span(
            f"send {envelope.get('event_type')}", context=_parent(envelope), kind=_SpanKind.PRODUCER,
            attributes={**_event_attributes(envelope), "messaging.operation.type": "send",
                        "eventflow.subscribers": sorted(subscribers)},
        ):
            return fn(subscribers, envelope, *args, **kwargs)
    return send


def traced_delivery(fn):
    """A delivery task (self, context, envelope, ...): a span that continues the envelope's trace."""
    @functools.wraps(fn)
    def deliver(self, context, envelope, *args, **kwargs):
        if _tracer is None:
            return fn(self, context, envelope, *args, **kwargs)
        with _tracer.start_as_current_span(**_delivery_span(context, envelope)) as span:
            outcome = fn(self, context, envelope, *args, **kwargs)
            span.set_attribute("eventflow.outcome", str(outcome))
            return outcome
    return deliver


@contextmanager
def delivering_batch(context: str, envelopes: list):
    """Around a batch written at once (eventbus/batching.py): a delivery span per envelope, as
    traced_delivery makes for one, from the batch's start to its end. Yields a function that
    takes the outcomes, in the envelopes' order."""
    if _tracer is None:
        yield _ignore
        return
    spans = [_tracer.start_span(**_delivery_span(context, envelope)) for envelope in envelopes]

    def outcomes(values) -> None:
        for span, outcome in zip(spans, values):
            span.set_attribute("eventflow.outcome", str(outcome))
    try:
        yield outcomes
    finally:
        for span in spans:
            span.end()


def _ignore(_values) -> None:
    pass


def _delivery_span(context: str, envelope) -> dict:
    fields = envelope if isinstance(envelope, dict) else {}
    return {"name": f"deliver {fields.get('event_type')} to {context}", "context": _parent(fields),
            "kind": _SpanKind.CONSUMER, "attributes": {**_event_attributes(fields), "eventflow.context": context,
                                                       "messaging.operation.type": "process"}}


def handling(handler):
    """Around one handler inside a delivery: the events it publishes are this span's children."""
    if _tracer is None:
        return _NO_FIELDS
    name = getattr(handler, "__qualname__", repr(handler))
    return _tracer.start_as_current_span(f"handle {name}", attributes={
        "code.function.name": name, "code.namespace": getattr(handler, "__module__", "")})


def _event_attributes(envelope: dict) -> dict:
    return {
        "messaging.system": "eventflow",
        "messaging.destination.name": str(envelope.get("event_type", "")),
        "messaging.message.id": str(envelope.get("event_id", "")),
        "messaging.message.conversation_id": str(envelope.get("correlation_id", "")),
    }


# --- commands ---------------------------------------------------------------------------
def traced_command(fn):
    """send_command(command, *, sender, ...): a span from sending to the reply (or giving up)."""
    @functools.wraps(fn)
    def send(command, *args, **kwargs):
        if _tracer is None:
            return fn(command, *args, **kwargs)
        with _tracer.start_as_current_span(f"command {type(command).__name__}", kind=_SpanKind.CLIENT, attributes={
            "messaging.system": "eventflow", "messaging.destination.name": type(command).__name__,
            "eventflow.sender": str(kwargs.get("sender", "")),
        }):
            return fn(command, *args, **kwargs)
    return send


def traced_command_task(fn):
    """The owner's command task (message): a span continuing the sender's trace."""
    @functools.wraps(fn)
    def execute(message, *args, **kwargs):
        if _tracer is None:
            return fn(message, *args, **kwargs)
        fields = message if isinstance(message, dict) else {}
        with _tracer.start_as_current_span(
            f"execute {fields.get('command_type')}", context=_parent(fields), kind=_SpanKind.SERVER, attributes={
                "messaging.system": "eventflow", "messaging.destination.name": str(fields.get("command_type", "")),
                "messaging.message.id": str(fields.get("command_id", "")), "eventflow.context": str(fields.get("owner", "")),
            },
        ) as span:
            outcome = fn(message, *args, **kwargs)
            span.set_attribute("eventflow.outcome", str(outcome))
            return outcome
    return execute


def replying(message: dict):
    """Around the owner's reply to a command's sender."""
    if _tracer is None:
        return _NO_FIELDS
    return _tracer.start_as_current_span(f"reply {message.get('command_type')}", kind=_SpanKind.PRODUCER,
                                         attributes={"messaging.message.id": str(message.get("command_id", ""))})
