"""The event bus: transactional outbox, relay, inbox-deduplicated delivery, receipts.

Public surface: what the contexts (orders, inventory, payments) use, always imported from
`eventbus` itself, never from its modules (import contract "Contexts use eventbus's public
API only", pyproject.toml):
    publish(event, *, context, correlation_id=None, causation_id=None) -> Envelope
    subscribe(context, {"EventType": handler, ...})   in the context's handlers.py
    register_view(context, fn)                          the context's local view state
    lock_key(using, key)                                one writer per key until the commit
    register_sweep(context, fn)                         a job the relay sweep runs
    register_local_view(context, *, models, fed_by | refill, lock=None)
                                                        its copy of others' data (rebuild_view)
    register_retention(context, fn), keep_for(...)      what retention deletes
    handle_commands(context, {"Command": fn}), send_command(...), CommandFailed
    get_flag(name)                                      a runtime switch
    order_decided(*, mode, outcome, using)              the orders-decided metric
    masked(value), may_see_emails(user)                 the masking rule
    ContextConfig                                       a context's AppConfig (apps.py)
    ContextModelAdmin, ReadOnlyContextAdmin, ReadOnlyInline    admin base classes
Names other than subscribe and register_view load on first use (PEP 562), so importing
`eventbus` needs neither Django's settings nor its apps.
"""

from importlib import import_module

from eventbus.registry import register_view, subscribe

# name -> the module that defines it
_LAZY = {
    "lock_key": "eventbus.locks",
    "register_sweep": "eventbus.registry",
    "register_local_view": "eventbus.registry",
    "register_retention": "eventbus.retention",
    "keep_for": "eventbus.retention",
    "handle_commands": "eventbus.registry",
    "send_command": "eventbus.commands",
    "CommandFailed": "eventbus.commands",
    "get_flag": "eventbus.flags",
    "order_decided": "eventbus.telemetry",
    "masked": "eventbus.privacy",
    "may_see_emails": "eventbus.privacy",
    "ContextConfig": "eventbus.appconfig",
    "ContextModelAdmin": "eventbus.admin_base",
    "ReadOnlyContextAdmin": "eventbus.admin_base",
    "ReadOnlyInline": "eventbus.admin_base",
}


def publish(event, *, context, correlation_id=None, causation_id=None):
    """Record `event` in `context`'s outbox in the caller's transaction (see publishing.publish)."""
    from eventbus.publishing import publish as _publish  # models load only once apps are ready

    return _publish(event, context=context, correlation_id=correlation_id, causation_id=causation_id)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'eventbus' has no attribute {name!r}")


__all__ = ["publish", "register_view", "subscribe", *sorted(_LAZY)]
