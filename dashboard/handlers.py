"""The dashboard subscribes to every event and to every delivery receipt, and takes
both in batches (eventbus/ingest.py): one transaction and one bulk insert per batch."""

from dashboard import services
from eventbus import subscribe
from eventbus.registry import ALL_EVENTS, on_batch, on_receipt


def record_event(event, envelope):
    services.log_event(envelope)


subscribe("dashboard", {ALL_EVENTS: record_event})
on_receipt(services.log_receipt)
on_batch("dashboard", services.log_batch)
