"""The log and the context views in the admin: read-only, read from the dashboard database."""

import json

from django.contrib import admin
from django.utils.html import format_html

from dashboard.models import ContextView, LogEntry
from eventbus.admin_base import ReadOnlyContextAdmin


def _pretty(value) -> str:
    # Only staff reach the admin, and staff see emails unmasked; format_html escapes.
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True))


@admin.register(LogEntry)
class LogEntryAdmin(ReadOnlyContextAdmin):
    using = "dashboard"
    list_display = ("seq", "kind", "event_type", "producer", "context", "outcome", "order_id",
                    "correlation_id", "recorded_at")
    list_filter = ("kind", "event_type", "producer", "context", "outcome")
    search_fields = ("=event_id", "=correlation_id", "=order_id", "=causation_id")
    readonly_fields = ("seq", "entry_key", "kind", "event_id", "event_type", "producer", "context",
                       "correlation_id", "causation_id", "order_id", "outcome", "recorded_at", "pretty_data")
    exclude = ("data",)
    show_full_result_count = False  # a COUNT(*) of a long log on every page is slow

    @admin.display(description="data")
    def pretty_data(self, obj):
        return _pretty(obj.data if obj.kind == obj.EVENT else obj.receipt())


@admin.register(ContextView)
class ContextViewAdmin(ReadOnlyContextAdmin):
    using = "dashboard"
    list_display = ("context", "seq", "updated_at")
    readonly_fields = ("context", "seq", "updated_at", "pretty_view")
    exclude = ("view",)

    @admin.display(description="view")
    def pretty_view(self, obj):
        return _pretty(obj.view)
