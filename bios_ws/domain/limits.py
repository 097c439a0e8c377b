"""A sliding-window rate limit per key, in memory (one process's view)."""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

#: Keys tracked at most; the oldest are forgotten first (a flood of sources cannot
#: grow the memory without bound).
MAX_KEYS = 10_000


class RateLimiter:
    """At most ``limit`` events per key within any ``window``."""

    def __init__(self, limit: int, window: timedelta) -> None:
        self._limit = limit
        self._window = window
        self._events: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: datetime) -> bool:
        """Count one event for ``key`` at ``now`` if the limit allows it; whether it did."""
        with self._lock:
            events = self._events.pop(key, None) or deque()
            while events and now - events[0] >= self._window:
                events.popleft()
            allowed = len(events) < self._limit
            if allowed:
                events.append(now)
            self._events[key] = events  # most recently used last
            while len(self._events) > MAX_KEYS:
                del self._events[next(iter(self._events))]
            return allowed
