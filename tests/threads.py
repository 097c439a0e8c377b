"""Run one function in several threads at once, for concurrency tests."""

from __future__ import annotations

import threading
from collections.abc import Callable


def run_in_threads(target: Callable[[int], object], count: int, timeout: float = 120.0) -> None:
    """``target(0)`` ... ``target(count - 1)``, each in a thread of its own, all started
    before any is joined; returns when all ended (or ``timeout`` passed for each)."""
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
