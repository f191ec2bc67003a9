"""The AsyncAPI 3.0 document of the bus, generated from contracts/ and the live subscriptions.

One channel per context queue: what that context's worker takes (the events it
subscribes to, the commands it owns). Every event is a message with its envelope as
payload (the event's own JSON Schema inside), its producer, subscribers, version and an
example that the catalog itself validates. Served by `GET /api/asyncapi.json`, printed by
`manage.py asyncapi`, rendered for people on `/catalog/`.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from typing import Any

from contracts import command_class, command_types, event_class, event_types, validate_command, validate_payload
from contracts.envelope import ENVELOPE_FIELDS
from config.routers import context_names
from eventbus import registry

UUID_EXAMPLE = "0b7c8f0e-3f0a-4a57-9d1e-6f1f2f3a4b5c"
# Example values by field name: realistic, and accepted by the catalog's own validation.
_EXAMPLES = {
    "order_id": "5f1d7a52-8c1e-4e7b-9a57-0a1c2b3d4e5f",
    "shipment_id": "3c2b1a09-8f7e-4d6c-9b5a-4f3e2d1c0b9a", "payment_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "name": "Ada Lovelace", "email": "ada@example.com", "sku": "DEMO-LAMP", "qty": 2, "requested": 2,
    "available": 5, "on_hand": 7, "reserved": 2, "version": 3, "price": "89.00", "total": "178.00",
    "amount": "178.00", "currency": "EUR", "payment_token": "tok_visa", "reason": "out of stock: DEMO-LAMP",
    "sku_prefix": "DEMO",
}


def _doc(cls: type) -> str:
    return inspect.cleandoc(cls.__doc__ or "")


def _fields(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def json_schema(hint: Any, schemas: dict[str, dict]) -> dict:
    """JSON Schema of a contract type; nested dataclasses go to `schemas` and are referenced."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": [json_schema(a, schemas) for a in args]}
    if hint is type(None):
        return {"type": "null"}
    if origin in (list, tuple):
        return {"type": "array", "items": json_schema(args[0], schemas)}
    if dataclasses.is_dataclass(hint):
        if hint.__name__ not in schemas:
            schemas[hint.__name__] = {}  # placeholder first: a type may refer to itself
            schemas[hint.__name__] = object_schema(hint, schemas)
        return {"$ref": f"#/components/schemas/{hint.__name__}"}
    return {str: {"type": "string"}, int: {"type": "integer"}, float: {"type": "number"},
            bool: {"type": "boolean"}}[hint]


def object_schema(cls: type, schemas: dict[str, dict]) -> dict:
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    schema = {"type": "object", "properties": {name: json_schema(hint, schemas) for name, hint in _fields(cls).items()},
              "required": required, "additionalProperties": False}
    if _doc(cls):
        schema["description"] = _doc(cls)
    return schema


def example_value(name: str, hint: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return example_value(name, next(a for a in args if a is not type(None)))
    if origin in (list, tuple):
        return [example_value(name, args[0])]
    if dataclasses.is_dataclass(hint):
        return example_payload(hint)
    if name in _EXAMPLES and isinstance(_EXAMPLES[name], hint):
        return _EXAMPLES[name]
    if name.endswith("_id"):
        return UUID_EXAMPLE
    return {str: name.replace("_", " "), int: 1, float: 1.5, bool: True}[hint]


def example_payload(cls: type) -> dict:
    return {name: example_value(name, hint) for name, hint in _fields(cls).items()}


def _envelope_schema(event_type: str, cls: type) -> dict:
    uuid = {"type": "string", "format": "uuid"}
    return {
        "type": "object",
        "required": list(ENVELOPE_FIELDS),
        "additionalProperties": False,
        "properties": {
            "event_id": uuid,
            "event_type": {"const": event_type},
            "version": {"const": cls.schema_version},
            "producer": {"const": cls.producer},
            "correlation_id": {**uuid, "description": "The same for every event of one order"},
            "causation_id": {"anyOf": [uuid, {"type": "null"}], "description": "The event this one reacts to"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "payload": {"$ref": f"#/components/schemas/{event_type}"},
            "traceparent": {"type": "string", "pattern": "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                            "description": "W3C trace context of the publishing span, when its process traces"},
            "tracestate": {"type": "string", "maxLength": 512, "description": "W3C tracestate, when present"},
        },
    }


def _summary(cls: type) -> str:
    return _doc(cls).split("\n\n")[0].replace("\n", " ")


def document() -> dict:
    """The AsyncAPI 3.0.0 document of the catalog and the subscriptions of this process."""
    schemas: dict[str, dict] = {}
    messages: dict[str, dict] = {}
    delivered_to: dict[str, list[str]] = {context: [] for context in context_names()}
    for event_type in event_types():
        cls = event_class(event_type)
        schemas[event_type] = object_schema(cls, schemas)
        subscribers = registry.subscribers_of(event_type)
        payload = example_payload(cls)
        validate_payload(event_type, payload)  # an example the bus itself would refuse is a bug here
        example = {"event_id": UUID_EXAMPLE, "event_type": event_type, "version": cls.schema_version,
                   "producer": cls.producer, "correlation_id": "3c2b1a09-8f7e-4d6c-9b5a-493827161504",
                   "causation_id": None, "occurred_at": "2026-11-27T12:00:00.000000Z", "payload": payload}
        messages[event_type] = {
            "name": event_type, "title": event_type, "summary": _summary(cls), "description": _doc(cls),
            "contentType": "application/json", "payload": _envelope_schema(event_type, cls),
            "examples": [{"name": f"{event_type} example", "payload": example}],
            "tags": [{"name": "event"}],
            "x-eventflow": {"kind": "event", "producer": cls.producer, "subscribers": subscribers,
                            "version": cls.schema_version},
        }
        for subscriber in subscribers:
            delivered_to.setdefault(subscriber, []).append(event_type)
    for command_type in command_types():
        cls = command_class(command_type)
        schemas[command_type] = object_schema(cls, schemas)
        payload = example_payload(cls)
        validate_command(command_type, payload)
        messages[command_type] = {
            "name": command_type, "title": command_type, "summary": _summary(cls), "description": _doc(cls),
            "contentType": "application/json", "payload": {"$ref": f"#/components/schemas/{command_type}"},
            "examples": [{"name": f"{command_type} example", "payload": payload}],
            "tags": [{"name": "command"}],
            # A command has one owner, who carries it out and replies; unless it names its
            # senders, the command-driven mode of orders is the one that sends it.
            "x-eventflow": {"kind": "command", "producer": ", ".join(getattr(cls, "senders", ("orders",))),
                            "subscribers": [cls.owner],
                            "version": cls.schema_version},
        }
        delivered_to.setdefault(cls.owner, []).append(command_type)

    channels, operations = {}, {}
    for context, names in delivered_to.items():
        channels[context] = {
            "address": context,
            "title": f"{context} queue",
            "description": f"The Celery queue of the {context} context: every event it subscribes to and "
                           f"every command it owns, one task per message.",
            "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in names},
        }
        if names:
            operations[f"{context}Receives"] = {
                "action": "receive", "channel": {"$ref": f"#/channels/{context}"},
                "summary": f"{context} takes what is delivered to it",
                "messages": [{"$ref": f"#/channels/{context}/messages/{name}"} for name in names],
            }
        for name in names:
            sender = messages[name]["x-eventflow"]["producer"]
            operations[f"{sender.split(',')[0]}Sends{name}To{context.title()}"] = {
                "action": "send", "channel": {"$ref": f"#/channels/{context}"},
                "summary": f"{sender} sends {name} to {context}",
                "messages": [{"$ref": f"#/channels/{context}/messages/{name}"}],
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "eventflow",
            "version": "1",
            "description": "Bounded contexts that talk only through events (and, in the comparison lab, "
                           "commands) carried by Celery over Redis: an outbox per context, at-least-once "
                           "delivery, an inbox that skips duplicates.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "broker": {"host": "127.0.0.1:6379", "protocol": "redis",
                       "description": "The Celery broker (REDIS_URL); `make run` starts a private one on a free port"},
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }
