"""The envelope being handled right now, so events published by a handler carry
its correlation id and name it as their cause without the handler passing them."""

from contextvars import ContextVar

current_envelope: ContextVar = ContextVar("eventflow_current_envelope", default=None)
