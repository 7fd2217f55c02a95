"""Bounded polling: the one way tests, benchmarks and tools wait for the lab."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class TimedOut(AssertionError):
    """A wait ran out of time: names what was awaited and the last value seen."""


def wait_for(
    predicate: Callable[[], T], timeout: float, interval: float = 0.5, what: str = ""
) -> T:
    """The predicate's first truthy value, polling every `interval` s for at most `timeout` s;
    TimedOut (an AssertionError) after that."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise TimedOut(f"timed out after {timeout}s waiting for {what or predicate}: {last!r}")
