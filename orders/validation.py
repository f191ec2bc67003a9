"""Validation of an order request against orders' local product view.

Errors come back as {field: [messages]} with fields named like the JSON API:
"customer.name", "customer.email", "payment_token", "lines", "lines[2].qty".
Duplicate SKUs are rejected (not merged): the client meant one line per product.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from orders.models import ProductView

MAX_LINES = 20
MAX_QTY = 100
MAX_NAME = 100
MAX_EMAIL = 254
# The test tokens payments understands, with a label for the form. Which amounts a token
# declines is payments' own rule (EVENTFLOW_INSUFFICIENT_FUNDS_LIMIT): orders does not know it.
PAYMENT_TOKENS = {
    "tok_visa": "tok_visa — approves",
    "tok_declined": "tok_declined — declines",
    "tok_insufficient_funds": "tok_insufficient_funds — declines large amounts",
}


# A NUL cannot be stored by PostgreSQL and a lone surrogate cannot be encoded as UTF-8:
# text holding either is refused before it reaches a database, an event or a log.
UNSAFE_TEXT = re.compile("[\x00\ud800-\udfff]")
UNSAFE_MESSAGE = "must not contain NUL characters or lone surrogates"


def unsafe_text_errors(value) -> dict[str, list[str]]:
    """{path: [message]} for every string of a decoded JSON value (keys too) holding a NUL or a
    lone surrogate. Iterative: the value may be as deep as the JSON decoder allows."""
    errors: dict[str, list[str]] = {}
    stack = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if UNSAFE_TEXT.search(item):
                errors[path or "body"] = [UNSAFE_MESSAGE]
        elif isinstance(item, dict):
            for key, child in item.items():
                if UNSAFE_TEXT.search(key):
                    errors[path or "body"] = [f"a field name {UNSAFE_MESSAGE}"]
                    continue
                stack.append((f"{path}.{key}" if path else key, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", child) for i, child in enumerate(item))
    return errors


class OrderInvalid(ValueError):
    """An order request that cannot be placed; `errors` is {field: [messages]}."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{f}: {' '.join(m)}" for f, m in errors.items()))


def validate_order(*, customer_name, customer_email, lines, payment_token) -> dict[str, list[str]]:
    """Every problem of the request, or {} when it can be placed. Stock is not checked here:
    an order beyond the shown availability is placed and rejected by the flow, visibly."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if not isinstance(customer_name, str):
        add("customer.name", "must be a string")
    elif not customer_name.strip():
        add("customer.name", "is required")
    elif len(customer_name.strip()) > MAX_NAME:
        add("customer.name", f"must be at most {MAX_NAME} characters")
    elif UNSAFE_TEXT.search(customer_name):
        add("customer.name", UNSAFE_MESSAGE)

    if not isinstance(customer_email, str):
        add("customer.email", "must be a string")
    else:
        try:
            if len(customer_email.strip()) > MAX_EMAIL:
                raise ValidationError("too long")
            validate_email(customer_email.strip())
        except ValidationError:
            add("customer.email", "is not a valid email address")

    if not isinstance(payment_token, str):
        add("payment_token", "must be a string")
    elif payment_token not in PAYMENT_TOKENS:
        add("payment_token", f"unknown payment token; use one of {', '.join(PAYMENT_TOKENS)}")

    if not isinstance(lines, (list, tuple)):
        add("lines", "must be a list of {sku, qty}")
        return errors
    if not lines:
        add("lines", "the cart is empty")
    elif len(lines) > MAX_LINES:
        add("lines", f"at most {MAX_LINES} lines per order")
        return errors
    seen: set[str] = set()
    skus: dict[int, str] = {}
    for i, line in enumerate(lines):
        if not isinstance(line, dict):
            add(f"lines[{i}]", "must be an object with sku and qty")
            continue
        extra = sorted(set(line) - {"sku", "qty"})
        if extra:
            add(f"lines[{i}]", f"unexpected field {extra[0]!r}")
        sku, qty = line.get("sku"), line.get("qty")
        if not isinstance(sku, str) or not sku:
            add(f"lines[{i}].sku", "must be a non-empty string")
        elif UNSAFE_TEXT.search(sku):
            add(f"lines[{i}].sku", UNSAFE_MESSAGE)
        elif sku in seen:
            add(f"lines[{i}].sku", f"duplicate SKU {sku}: put the whole quantity on one line")
        else:
            seen.add(sku)
            skus[i] = sku
        if isinstance(qty, bool) or not isinstance(qty, int):
            add(f"lines[{i}].qty", "must be an integer")
        elif not 1 <= qty <= MAX_QTY:
            add(f"lines[{i}].qty", f"must be between 1 and {MAX_QTY}")
    known = set(ProductView.objects.using("orders").filter(sku__in=set(skus.values())).values_list("sku", flat=True))
    for i, sku in skus.items():
        if sku not in known:
            add(f"lines[{i}].sku", f"unknown product {sku}")
    return errors
