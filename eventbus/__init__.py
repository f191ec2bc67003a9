"""The event bus: transactional outbox, relay, inbox-deduplicated delivery, receipts.

Public surface (what contexts use):
    publish(event, *, context, correlation_id=None, causation_id=None) -> Envelope
    subscribe(context, {"EventType": handler, ...})   in the context's handlers.py
    register_view(context, fn)                          the context's local view state
    lock_key(using, key)                                one writer per key until the commit
"""

from eventbus.locks import lock_key
from eventbus.registry import register_view, subscribe


def publish(event, *, context, correlation_id=None, causation_id=None):
    """Record `event` in `context`'s outbox in the caller's transaction (see publishing.publish)."""
    from eventbus.publishing import publish as _publish  # models load only once apps are ready

    return _publish(event, context=context, correlation_id=correlation_id, causation_id=causation_id)


__all__ = ["lock_key", "publish", "register_view", "subscribe"]
