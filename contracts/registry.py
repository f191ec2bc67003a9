"""The catalog registry and payload validation against each event's dataclass.

Validation is strict: a missing field, an extra field or a value of the wrong
type raises ContractError naming the field by its path (`lines[1].qty`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar


class ContractError(ValueError):
    """A message does not fit the catalog; `field` names the offending field."""

    def __init__(self, message: str, *, field: str | None = None):
        self.field = field
        super().__init__(f"{field}: {message}" if field else message)


_CATALOG: dict[str, type] = {}


def register(cls: type) -> type:
    """Add an event dataclass to the catalog (used as a class decorator).

    The class must be a frozen dataclass with `schema_version` and `producer` class
    attributes; its name is its event type.
    """
    if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:
        raise TypeError(f"{cls.__name__} must be a frozen dataclass")
    for attr in ("schema_version", "producer"):
        if not hasattr(cls, attr):
            raise TypeError(f"{cls.__name__} needs a class attribute `{attr}`")
    existing = _CATALOG.get(cls.__name__)
    if existing is not None and existing is not cls:
        raise TypeError(f"event type {cls.__name__} is already registered")
    _CATALOG[cls.__name__] = cls
    return cls


_COMMANDS: dict[str, type] = {}


def register_command(cls: type) -> type:
    """Add a command dataclass (imperative name, `schema_version`, `owner` context)."""
    if not dataclasses.is_dataclass(cls) or not cls.__dataclass_params__.frozen:
        raise TypeError(f"{cls.__name__} must be a frozen dataclass")
    for attr in ("schema_version", "owner"):
        if not hasattr(cls, attr):
            raise TypeError(f"{cls.__name__} needs a class attribute `{attr}`")
    _COMMANDS[cls.__name__] = cls
    return cls


def _lookup(table: dict[str, type], kind: str, name: str) -> type:
    try:
        return table[name]
    except KeyError:
        raise ContractError(f"unknown {kind} type {name!r}", field=f"{kind}_type") from None


def command_class(command_type: str) -> type:
    return _lookup(_COMMANDS, "command", command_type)


def command_types() -> list[str]:
    return sorted(_COMMANDS)


def validate_command(command_type: str, payload: Any) -> Any:
    """Build the command object of `command_type` from a JSON payload, or raise ContractError."""
    cls = command_class(command_type)
    if not isinstance(payload, dict):
        raise ContractError(f"expected an object, got {type(payload).__name__}", field="payload")
    return _from_dict(cls, payload, "")


def event_class(event_type: str) -> type:
    return _lookup(_CATALOG, "event", event_type)


def event_types() -> list[str]:
    return sorted(_CATALOG)


def _hints(cls: type) -> dict[str, Any]:
    return {
        name: hint
        for name, hint in typing.get_type_hints(cls).items()
        if typing.get_origin(hint) is not ClassVar and hint is not ClassVar
    }


def _convert(value: Any, hint: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _convert(value, non_none[0], path)
        raise TypeError(f"unsupported union at {path}")
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ContractError(f"expected a list, got {type(value).__name__}", field=path)
        return tuple(_convert(item, args[0], f"{path}[{i}]") for i, item in enumerate(value))
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ContractError(f"expected a list, got {type(value).__name__}", field=path)
        return tuple(_convert(item, args[0], f"{path}[{i}]") for i, item in enumerate(value))
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if not isinstance(value, dict):
            raise ContractError(f"expected an object, got {type(value).__name__}", field=path)
        return _from_dict(hint, value, path)
    if hint is bool:
        if not isinstance(value, bool):
            raise ContractError(f"expected a boolean, got {type(value).__name__}", field=path)
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ContractError(f"expected an integer, got {type(value).__name__}", field=path)
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ContractError(f"expected a number, got {type(value).__name__}", field=path)
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ContractError(f"expected a string, got {type(value).__name__}", field=path)
        return value
    raise TypeError(f"unsupported type {hint!r} at {path}")


def _from_dict(cls: type, data: dict, path: str) -> Any:
    hints = _hints(cls)
    prefix = f"{path}." if path else ""
    extra = sorted(set(data) - set(hints))
    if extra:
        raise ContractError("unexpected field", field=f"{prefix}{extra[0]}")
    values = {}
    for field in dataclasses.fields(cls):
        if field.name not in data:
            if field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING:
                continue
            raise ContractError("missing field", field=f"{prefix}{field.name}")
        values[field.name] = _convert(data[field.name], hints[field.name], f"{prefix}{field.name}")
    return cls(**values)


def validate_payload(event_type: str, payload: Any) -> Any:
    """Build the event object of `event_type` from a JSON payload, or raise ContractError."""
    cls = event_class(event_type)
    if not isinstance(payload, dict):
        raise ContractError(f"expected an object, got {type(payload).__name__}", field="payload")
    return _from_dict(cls, payload, "")


def to_payload(event: Any) -> dict:
    """The JSON payload of an event object (tuples become lists)."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    payload = plain(event)
    # Round-trip through validation so a message built in code is held to the same rules.
    name = type(event).__name__
    if name in _COMMANDS:
        validate_command(name, payload)
    else:
        validate_payload(name, payload)
    return payload
