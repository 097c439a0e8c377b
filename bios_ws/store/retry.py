"""Retrying a transaction that lost to another: PostgreSQL's serialization failures
(SQLSTATE 40001) and detected deadlocks (40P01), raised as ``StoreConflict``
(``store.engine.store_errors``). The transaction was rolled back by the server, so the
whole unit of work runs again, a bounded number of times, after a short random pause
that keeps the losers from meeting again."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from bios_ws.errors import StoreConflict

log = logging.getLogger("bios_ws.store")
T = TypeVar("T")

#: Runs of a unit of work in all (the first and the retries).
CONFLICT_ATTEMPTS = 4
_PAUSE_SECONDS = 0.01


def retry_conflicts(work: Callable[[], T], attempts: int = CONFLICT_ATTEMPTS,
                    sleep: Callable[[float], None] = time.sleep) -> T:
    """``work()``, run again while it raises StoreConflict, ``attempts`` times at most
    (then the last StoreConflict goes up). ``work`` must be a whole unit of work."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except StoreConflict:
            if attempt == attempts:
                raise
            log.info("the state store reported a conflict; running the transaction again"
                     " (%d of %d)", attempt + 1, attempts)
            sleep(random.uniform(0, _PAUSE_SECONDS * 2 ** attempt))  # noqa: S311 (no secret)
    raise AssertionError("unreachable")
