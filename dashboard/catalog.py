"""The /catalog/ page's view of the AsyncAPI document: per message its meaning, fields,
producer, subscribers, and how often the log saw it lately."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count
from django.utils import timezone

from dashboard.models import LogEntry

# The page's rate covers this many minutes of the log.
RATE_MINUTES = 5


def _type_of(schema: dict) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[1]
    if schema.get("type") == "array":
        return f"list of {_type_of(schema['items'])}"
    if "anyOf" in schema:
        return " or ".join(_type_of(s) for s in schema["anyOf"])
    return schema.get("type", "any")


def _fields(schema: dict) -> list[dict]:
    required = set(schema.get("required", []))
    return [{"name": name, "type": _type_of(prop), "required": name in required}
            for name, prop in schema["properties"].items()]


def activity(types: list[str]) -> dict[str, dict]:
    """Per type: messages logged in the last RATE_MINUTES (and per minute) and when it was last seen."""
    since = timezone.now() - timedelta(minutes=RATE_MINUTES)
    # Distinct ids: an event is one log entry plus its receipts, a command its two records.
    recent = dict(LogEntry.objects.using("dashboard").filter(recorded_at__gte=since).values("event_type")
                  .annotate(n=Count("event_id", distinct=True)).values_list("event_type", "n"))
    result = {}
    for name in types:
        last = (LogEntry.objects.using("dashboard").filter(event_type=name).order_by("-seq")
                .values_list("recorded_at", flat=True).first())
        count = recent.get(name, 0)
        result[name] = {"recent": count, "per_minute": round(count / RATE_MINUTES, 1), "last_seen": last}
    return result


def catalog_entries(document: dict) -> list[dict]:
    """The messages of an AsyncAPI document (ours), events first, with their activity."""
    messages = document["components"]["messages"]
    schemas = document["components"]["schemas"]
    seen = activity(list(messages))
    entries = []
    for name, message in messages.items():
        meta = message["x-eventflow"]
        entries.append({
            "name": name, "kind": meta["kind"], "summary": message["summary"],
            # Docstrings wrap at 100 columns: one line per paragraph for the page.
            "description": "\n\n".join(" ".join(p.split()) for p in message["description"].split("\n\n")),
            "producer": meta["producer"], "subscribers": meta["subscribers"], "version": meta["version"],
            "fields": _fields(schemas[name]), **seen[name],
        })
    return sorted(entries, key=lambda e: (e["kind"] != "event", e["name"]))
