"""The dashboard log's retention: capped by age and by count, in small batches.

The log holds every envelope and receipt; entries older than
EVENTFLOW_RETENTION_DASHBOARD seconds go, and beyond the newest
EVENTFLOW_RETENTION_DASHBOARD_ROWS entries the oldest go first. Control actions
(pause/resume) are kept as long as the log they explain. Runs with the bus's
retention (eventbus.retention) from the relay sweep.
"""

from __future__ import annotations

from django.conf import settings

from dashboard.models import ControlAction, LogEntry
from dashboard.replay import view_history_prune
from eventbus.retention import delete_in_batches, keep_for, older_than, register_retention

DB = "dashboard"


def log_prune() -> int:
    """Delete log entries past the age limit, then the oldest beyond the row cap."""
    entries = LogEntry.objects.using(DB)
    deleted = delete_in_batches(entries.filter(recorded_at__lt=older_than(settings.EVENTFLOW_RETENTION_DASHBOARD)))
    # The seq of the newest entry beyond the cap: it and everything older go.
    beyond = entries.order_by("-seq").values_list("seq", flat=True)[
        settings.EVENTFLOW_RETENTION_DASHBOARD_ROWS:settings.EVENTFLOW_RETENTION_DASHBOARD_ROWS + 1]
    if beyond:
        deleted += delete_in_batches(entries.filter(seq__lte=beyond[0]))
    return deleted


register_retention(DB, log_prune)
register_retention(DB, view_history_prune)
register_retention(DB, keep_for(ControlAction, context=DB, field="created_at", setting="EVENTFLOW_RETENTION_DASHBOARD"))
