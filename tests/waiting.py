"""Waiting in tests: poll a condition with a deadline, and say what never came."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(check: Callable[[], bool], what: str, limit: float = 20.0,
             every: float = 0.1) -> None:
    """Until ``check()`` is true; AssertionError naming ``what`` after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise AssertionError(f"not {what} within {limit:.0f} s")
