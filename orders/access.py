"""Who may see an order in full: staff, or whoever holds the order's token.

The token is a capability handed out once, in the answer to the placement (the API's
body, the form's redirect); only its SHA-256 is stored. It never travels in an event,
so neither the log nor the websocket can show it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from orders.models import OrderAccess

DB = "orders"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def order_token_issue(*, order_id: str) -> str:
    """A new unguessable token for `order_id` (256 random bits); only its hash is kept."""
    token = secrets.token_urlsafe(32)
    OrderAccess.objects.using(DB).create(order_id=order_id, token_sha256=_digest(token))
    return token


def order_token_valid(*, order_id: str, token: str | None) -> bool:
    """True when `token` is the one handed out for `order_id`."""
    if not token:
        return False
    stored = OrderAccess.objects.using(DB).filter(order_id=order_id).values_list("token_sha256", flat=True).first()
    return stored is not None and hmac.compare_digest(stored, _digest(token))
