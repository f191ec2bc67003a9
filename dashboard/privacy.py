"""What an anonymous viewer may see: customer emails masked ("j***@example.com").

Masking works on the JSON forms (envelopes, receipts, views) and on any string
that looks like an email, wherever a producer put it, so a new event field that
carries an address is masked without a change here.
"""

from __future__ import annotations

import re
from typing import Any

EMAIL = re.compile(r"([^\s@<>\"'(),;:]+)@([^\s@<>\"'(),;:]+)")


def mask_email(value: str) -> str:
    """"jane@example.com" -> "j***@example.com" (every address inside `value`)."""
    return EMAIL.sub(lambda m: f"{m.group(1)[:1]}***@{m.group(2)}", value)


def masked(value: Any) -> Any:
    """A copy of a JSON value with every email-looking string masked (shared parts where nothing changes)."""
    if isinstance(value, str):
        return mask_email(value) if "@" in value else value
    if isinstance(value, dict):
        return {key: masked(item) for key, item in value.items()}
    if isinstance(value, list):
        return [masked(item) for item in value]
    return value


def may_see_emails(user) -> bool:
    """Staff see customer emails; everyone else sees them masked."""
    return bool(user is not None and getattr(user, "is_authenticated", False) and getattr(user, "is_staff", False))


def for_viewer(value: Any, user) -> Any:
    return value if may_see_emails(user) else masked(value)
