"""Waiting for eventual consistency without sleeping blindly."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], *, timeout: float = 30, interval: float = 0.1, message: str = "condition") -> T:
    """Poll `predicate` until it returns something truthy; fail the test with `message` if it never does."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}; last value: {last!r}")
        time.sleep(interval)
