"""What a viewer who is not staff may see of a customer: emails masked ("j***@example.com"),
names reduced to initials ("A. L.").

The one place for this rule: the dashboard (pages, JSON API, websocket, snapshot) and
orders' own API both mask through here. Masking works on the JSON forms (envelopes,
receipts, views, orders) and on any string that looks like an email, wherever a producer
put it, so a new event field that carries an address is masked without a change here.
A name has no shape to recognise: it is masked where a customer is described, the
`name` of any object under a `customer` key and any `customer_name` value.
"""

from __future__ import annotations

import re
from typing import Any

EMAIL = re.compile(r"([^\s@<>\"'(),;:]+)@([^\s@<>\"'(),;:]+)")
# Keys whose object describes a person (its "name" is masked) or whose value is a person's name.
PERSON_KEYS = frozenset({"customer"})
NAME_KEYS = frozenset({"customer_name"})


def mask_email(value: str) -> str:
    """"jane@example.com" -> "j***@example.com" (every address inside `value`)."""
    return EMAIL.sub(lambda m: f"{m.group(1)[:1]}***@{m.group(2)}", value)


def mask_name(value: str) -> str:
    """"Ada Lovelace" -> "A. L." (the first letter of each word)."""
    return " ".join(f"{word[0]}." for word in value.split())


def masked(value: Any) -> Any:
    """A copy of a JSON value with customers' emails and names masked (shared parts where nothing changes)."""
    if isinstance(value, str):
        return mask_email(value) if "@" in value else value
    if isinstance(value, dict):
        return {key: _masked_item(key, item) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value


def _masked_item(key: str, item: Any) -> Any:
    if key in NAME_KEYS and isinstance(item, str):
        return mask_name(item)
    if key in PERSON_KEYS and isinstance(item, dict) and isinstance(item.get("name"), str):
        return {**masked(item), "name": mask_name(item["name"])}
    return masked(item)


def may_see_emails(user) -> bool:
    """Staff see customers in full (names and emails); everyone else sees them masked."""
    return bool(user is not None and getattr(user, "is_authenticated", False) and getattr(user, "is_staff", False))


def for_viewer(value: Any, user) -> Any:
    return value if may_see_emails(user) else masked(value)
