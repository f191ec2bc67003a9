"""Prometheus metrics of every process, served by `GET /metrics`.

The metric objects live here; call sites make one call each. Processes write their
counters and histograms to files in PROMETHEUS_MULTIPROC_DIR (the settings point it
at `<data dir>/prometheus`), prometheus-client's multiprocess mode, so one scrape of
Daphne sums every worker, the sweep and Daphne itself. What is a state rather than a
count (queue depth, outbox rows, consumer state, dead letters) is read at scrape time.

Labels stay bounded: contexts, event and command types of the catalog (anything else
is "other"), outcomes, modes. Never an order id or an event id.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess
from prometheus_client.core import GaugeMetricFamily

from contracts import command_types, event_types

log = logging.getLogger("eventbus.telemetry")

DELIVERIES = Counter(
    "eventflow_deliveries", "Deliveries of an event or command to a context, by outcome",
    ["context", "event_type", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "eventflow_handler_duration_seconds", "Time a context's handlers took for one delivery",
    ["context", "event_type"], buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10),
)
PUBLISH_TO_HANDLED_SECONDS = Histogram(
    "eventflow_publish_to_handled_seconds", "From publish to the end of a subscriber's handlers",
    ["context"], buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60),
)
ORDERS = Counter("eventflow_orders", "Orders decided, by mode and outcome", ["mode", "outcome"])
WEBSOCKET_CLIENTS = Gauge(
    "eventflow_websocket_clients", "Open dashboard websockets", multiprocess_mode="livesum",
)
WEBSOCKET_FRAMES = Counter("eventflow_websocket_frames_sent", "Frames sent to dashboard websockets")


def _message_type(name: str) -> str:
    return name if name in _known_types() else "other"


def _known_types() -> frozenset[str]:
    global _KNOWN
    if _KNOWN is None:
        _KNOWN = frozenset(event_types()) | frozenset(command_types())
    return _KNOWN


_KNOWN: frozenset[str] | None = None


def _seconds_between(start, end) -> float | None:
    try:
        return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    except (TypeError, ValueError):
        return None


# --- call sites ------------------------------------------------------------------------


def delivery_done(receipt: dict) -> None:
    """One delivery of an event, or a command carried out (its reply), finished with any
    outcome: count it and time it, from the receipt sent to the dashboard."""
    if receipt.get("kind") == "command":  # the sender's record of sending it, not a delivery
        return
    context = receipt["context"] if receipt["context"] in settings.DATABASES else "other"
    kind = _message_type(receipt.get("event_type", ""))
    DELIVERIES.labels(context, kind, receipt["outcome"]).inc()
    if receipt["outcome"] != "ok":
        return
    handled = _seconds_between(receipt.get("started_at"), receipt.get("finished_at"))
    if handled is not None and handled >= 0:
        HANDLER_SECONDS.labels(context, kind).observe(handled)
    latency = _seconds_between(receipt.get("published_at"), receipt.get("finished_at"))
    if latency is not None and latency >= 0:
        PUBLISH_TO_HANDLED_SECONDS.labels(context).observe(latency)


def order_decided(*, mode: str, outcome: str, using: str) -> None:
    """An order was confirmed or rejected: counted once its transaction commits."""
    transaction.on_commit(lambda: ORDERS.labels(mode, outcome.lower()).inc(), using=using)


def websocket_opened(consumer) -> None:
    consumer._telemetry_counted = True
    WEBSOCKET_CLIENTS.inc()


def websocket_closed(consumer) -> None:
    if getattr(consumer, "_telemetry_counted", False):
        consumer._telemetry_counted = False
        WEBSOCKET_CLIENTS.dec()


def websocket_frame_sent() -> None:
    WEBSOCKET_FRAMES.inc()


# --- the scrape --------------------------------------------------------------------------


class StateCollector:
    """What the bus holds right now, read when Prometheus asks."""

    def collect(self):
        from eventbus import broker, control, subscriptions
        from eventbus.models import DeadLetter, OutboxMessage

        contexts = control.context_names()
        unsent = GaugeMetricFamily("eventflow_outbox_unsent", "Outbox rows not yet sent to the broker", labels=["context"])
        unconfirmed = GaugeMetricFamily(
            "eventflow_outbox_unconfirmed", "Sent outbox rows some subscriber has not recorded yet", labels=["context"])
        dead = GaugeMetricFamily("eventflow_dead_letters", "Dead letters not retried yet", labels=["context"])
        for context in contexts:
            rows = OutboxMessage.objects.using(context)
            unsent.add_metric([context], rows.filter(sent_at__isnull=True).count())
            unconfirmed.add_metric([context], rows.filter(sent_at__isnull=False, confirmed_at__isnull=True).count())
            dead.add_metric([context], DeadLetter.objects.using(context).filter(retried_at__isnull=True).count())
        yield from (unsent, unconfirmed, dead)
        depths = _read_or_warn("queue depths", lambda: broker.queue_depths(contexts))
        if depths is not None:
            depth = GaugeMetricFamily("eventflow_queue_depth", "Messages waiting in a context's queue", labels=["context"])
            for context in contexts:
                depth.add_metric([context], depths.get(context, 0))
            yield depth
        status = _read_or_warn("consumer status", control.consumer_status)
        if status is not None:
            consumer = GaugeMetricFamily(
                "eventflow_consumer_state", "1 for the state each context's consumer is in (online, paused, offline)",
                labels=["context", "state"])
            for context in contexts:
                for state in ("online", "paused", "offline"):
                    consumer.add_metric([context, state], 1 if status.get(context) == state else 0)
            yield consumer
        subscribed = _read_or_warn("subscriptions", subscriptions.states)
        if subscribed is not None:
            lag = GaugeMetricFamily("eventflow_replay_lag", "Events a subscriber is behind: detached, or replaying "
                                    "after an attach (0 once caught up)", labels=["context"])
            attached = GaugeMetricFamily("eventflow_subscription_attached", "1 while events are routed to the context",
                                         labels=["context"])
            for context, state in subscribed.items():
                lag.add_metric([context], state["lag"])
                attached.add_metric([context], 1 if state["attached"] else 0)
            yield from (lag, attached)


def _read_or_warn(what: str, read):
    """`read()`, or None with a warning when it fails: the scrape still answers, and the
    missing series says that part (the broker, the workers) is away."""
    try:
        return read()
    except Exception as exc:
        log.warning("%s unavailable: %s", what, exc)
        return None


def _forget_dead_processes(directory: Path) -> None:
    """Live gauges of a process that has gone (a restarted Daphne) must not count any more."""
    for path in directory.glob("gauge_live*_*.db"):
        pid = int(path.stem.rsplit("_", 1)[1])
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(directory))
        except PermissionError:
            pass


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics: the Prometheus text format, every process of the stack in one scrape."""
    directory = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    _forget_dead_processes(directory)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(directory))
    registry.register(StateCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
