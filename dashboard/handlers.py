"""The dashboard subscribes to every event and to every delivery receipt, and takes
both in batches (eventbus/ingest.py): one transaction and one bulk insert per batch.
Its view cache can be rebuilt from its view history (`manage.py rebuild_view dashboard`)."""

from dashboard import replay, services
from dashboard.models import ContextView
from eventbus import subscribe
from eventbus.registry import ALL_EVENTS, on_batch, on_receipt, register_local_view


def record_event(event, envelope):
    services.log_event(envelope)


subscribe("dashboard", {ALL_EVENTS: record_event})
on_receipt(services.log_receipt)
on_batch("dashboard", services.log_batch)
register_local_view("dashboard", models=[ContextView], refill=replay.rebuild_view_cache, lock="dashboard:log")
