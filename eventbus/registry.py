"""Who subscribes to what, and who carries out which command. Each context declares its
tables in its own handlers.py; the relay and the command transport (eventbus/commands.py)
read this registry and never import a context."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from contracts import ContractError, command_class, event_class, event_types

ALL_EVENTS = "*"

Handler = Callable[[Any, Any], None]

_subscriptions: dict[str, dict[str, list[Handler]]] = {}
_views: dict[str, Callable[[], dict]] = {}
_receipt_handlers: list[Callable[[dict], None]] = []
_sweeps: dict[str, list[Callable[[], int]]] = {}
_batch_writers: dict[str, Callable[[list, dict], None]] = {}
_local_views: dict[str, dict] = {}
_commands: dict[tuple[str, str], Callable[[Any], dict]] = {}


def subscribe(context: str, table: dict[str, Handler | list[Handler]]) -> None:
    """Declare `context`'s handlers: {event type (or "*"): handler or [handlers]}.

    A handler is called as handler(event, envelope) inside the context's
    transaction; what it publishes commits with it.
    """
    known = set(event_types())
    routes = _subscriptions.setdefault(context, {})
    for event_type, handlers in table.items():
        if event_type != ALL_EVENTS and event_type not in known:
            event_class(event_type)  # raises ContractError naming the unknown type
        handlers = handlers if isinstance(handlers, list) else [handlers]
        existing = routes.setdefault(event_type, [])
        existing.extend(h for h in handlers if h not in existing)


def handle_commands(context: str, table: dict[str, Callable[[Any], dict]]) -> None:
    """Declare `context`'s command handlers: {"ReserveStock": fn}; fn(command) -> reply dict.
    A context may only handle the commands it owns (contracts/commands.py)."""
    for command_type, fn in table.items():
        if command_class(command_type).owner != context:
            raise ContractError(f"{command_type} is owned by {command_class(command_type).owner}, not {context}",
                                field="command_type")
        _commands[(context, command_type)] = fn


def command_handler(context: str, command_type: str) -> Callable[[Any], dict] | None:
    return _commands.get((context, command_type))


def command_handlers() -> dict[tuple[str, str], Callable[[Any], dict]]:
    """{(owner, command type): fn} of every context."""
    return dict(_commands)


def register_view(context: str, fn: Callable[[], dict]) -> None:
    """The function that returns `context`'s local view state (JSON-able) for receipts."""
    _views[context] = fn


def register_local_view(context: str, *, models: list, fed_by: list[str] = (),
                        refill: Callable[[Callable[[str], None]], int] | None = None, lock: str | None = None) -> None:
    """`context` keeps a copy of other contexts' data in `models`, written only by its
    handlers of `fed_by`: `manage.py rebuild_view` can discard it and replay it (eventbus/rebuild.py).
    A view fed by something else than events (the dashboard's, by the receipts' view rows)
    gives `refill(progress) -> records replayed` instead: called in the rebuild's transaction once
    the rows are gone, it writes them again from its own log. `lock`: the key (`lock_key`) its
    writers hold; the rebuild holds it from before its snapshot until the swap."""
    if bool(fed_by) == (refill is not None):
        raise ValueError(f"{context}: a local view is fed either by events (fed_by) or by a refill, one of them")
    for event_type in fed_by:
        event_class(event_type)  # raises ContractError naming an unknown type
    _local_views[context] = {"models": list(models), "fed_by": list(fed_by), "refill": refill, "lock": lock}


def local_view(context: str) -> dict:
    """{"models", "fed_by", "refill", "lock"} of `context`'s local view; ValueError if it declared none."""
    if context not in _local_views:
        raise ValueError(f"{context!r} declares no local view; these do: {', '.join(sorted(_local_views)) or 'none'}")
    return _local_views[context]


def on_receipt(fn: Callable[[dict], None]) -> None:
    """Register the consumer of delivery receipts (the dashboard)."""
    if fn not in _receipt_handlers:
        _receipt_handlers.append(fn)


def register_sweep(context: str, fn: Callable[[], int]) -> None:
    """A job of `context` the relay sweep runs every round (fn() -> rows it changed)."""
    jobs = _sweeps.setdefault(context, [])
    if fn not in jobs:
        jobs.append(fn)


def sweeps() -> dict[str, list[Callable[[], int]]]:
    return {context: list(jobs) for context, jobs in _sweeps.items()}


def on_batch(context: str, writer: Callable[[list, dict], None]) -> None:
    """`context` takes its events and the receipts in batches (eventbus/ingest.py):
    writer([("event", envelope, its delivery's receipt) | ("receipt", dict), ...], {context: changed view rows})
    runs inside the context's transaction, after the inbox rows of the new events."""
    _batch_writers[context] = writer


def batch_writer(context: str) -> Callable[[list, dict], None] | None:
    return _batch_writers.get(context)


def receipt_handlers() -> list[Callable[[dict], None]]:
    return list(_receipt_handlers)


def handlers_for(context: str, event_type: str) -> list[Handler]:
    routes = _subscriptions.get(context, {})
    return [*routes.get(event_type, []), *routes.get(ALL_EVENTS, [])]


def subscribers_of(event_type: str) -> list[str]:
    """Contexts that declare `event_type`, in a stable order; the relay routes by the
    subscriptions seeded from this (eventbus.subscriptions.subscribers_of)."""
    return sorted(
        context
        for context, routes in _subscriptions.items()
        if event_type in routes or ALL_EVENTS in routes
    )


def declared_types(context: str) -> list[str]:
    """What `context` can handle (its handlers.py): seeds its subscription (eventbus/subscriptions.py)."""
    return list(_subscriptions.get(context, {}))


def contexts() -> list[str]:
    return sorted(_subscriptions)


def view_of(context: str) -> Callable[[], dict] | None:
    return _views.get(context)


def topology() -> dict:
    """Nodes and producer -> subscriber routes, for the dashboard graph."""
    routes = []
    producers = set()
    for event_type in event_types():
        producer = event_class(event_type).producer
        producers.add(producer)
        for subscriber in subscribers_of(event_type):
            routes.append({"event_type": event_type, "producer": producer, "subscriber": subscriber})
    nodes = sorted(set(contexts()) | producers)
    return {"nodes": nodes, "routes": routes}
