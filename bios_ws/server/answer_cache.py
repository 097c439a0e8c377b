"""The answers of remotes to reads, kept in this worker's memory for routes with a cache.

``Forwarder`` puts every successful answer (HTTP 200) of a read operation of a route
with ``cache_seconds`` here, and asks for it back only when the route's remote is
unavailable: an answer younger than the route's maximum age is then served, saying it
is cached and how old it is (``Age``, ``X-Vbios-Cached``; ``docs/routing.md``).

An answer is keyed by (remote, domain, operation, SHA-256 of the exact request body):
the same question of the same domain to the same remote, byte for byte. Nothing is
written to disk. The cache is bounded in entries and in bytes, the least recently used
answer going first; an answer larger than the whole byte bound is not kept. A domain's
answers are dropped together (``forget_domain``) when one of its writes may have
changed what they say.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

#: Answers kept per worker, and their bytes (bodies and content types) at most.
MAX_ENTRIES = 1024
MAX_BYTES = 8 * 1_048_576
#: What an entry costs beside its body and content type (the key, the record).
ENTRY_OVERHEAD = 256


@dataclass(frozen=True)
class CacheKey:
    remote: str
    domain: str
    operation: str
    digest: bytes  # SHA-256 of the request body

    @classmethod
    def of(cls, remote: str, domain: str, operation: str, body: bytes) -> CacheKey:
        return cls(remote, domain, operation, hashlib.sha256(body).digest())


@dataclass(frozen=True)
class CachedAnswer:
    """An HTTP 200 answer of ``remote`` and when it came (the cache's clock)."""

    remote: str
    content_type: str
    body: bytes
    stored_at: float

    @property
    def size(self) -> int:
        return len(self.body) + len(self.content_type) + ENTRY_OVERHEAD


@dataclass(frozen=True)
class Hit:
    answer: CachedAnswer
    #: Whole seconds since the remote gave it (HTTP ``Age``, RFC 9111 section 5.1).
    age: int


class AnswerCache:
    """Least recently used answers, bounded in ``max_entries`` and ``max_bytes``; safe
    to share by the threads of one worker."""

    def __init__(self, *, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("an answer cache holds at least one entry and one byte")
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._clock = clock
        self._entries: OrderedDict[CacheKey, CachedAnswer] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """The bytes the kept answers count for."""
        return self._bytes

    def put(self, key: CacheKey, content_type: str, body: bytes) -> bool:
        """Keep ``body`` as the answer to ``key`` as of now; whether it was kept (one
        larger than the byte bound is not, and the older answer to ``key`` goes)."""
        answer = CachedAnswer(key.remote, content_type, body, self._clock())
        with self._lock:
            self._remove(key)
            if answer.size > self._max_bytes:
                return False
            self._entries[key] = answer
            self._bytes += answer.size
            while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
                oldest = next(iter(self._entries))
                self._remove(oldest)
        return True

    def get(self, key: CacheKey, max_age: float) -> Hit | None:
        """The answer to ``key`` if it is younger than ``max_age`` seconds (an older one
        is dropped), or None."""
        now = self._clock()
        with self._lock:
            answer = self._entries.get(key)
            if answer is None:
                return None
            elapsed = max(0.0, now - answer.stored_at)
            if elapsed >= max_age:
                self._remove(key)
                return None
            self._entries.move_to_end(key)
        return Hit(answer, int(elapsed))

    def forget(self, key: CacheKey) -> None:
        with self._lock:
            self._remove(key)

    def forget_domain(self, domain: str) -> int:
        """Drop every answer given for ``domain``; how many there were."""
        with self._lock:
            keys = [key for key in self._entries if key.domain == domain]
            for key in keys:
                self._remove(key)
        return len(keys)

    def _remove(self, key: CacheKey) -> None:
        answer = self._entries.pop(key, None)
        if answer is not None:
            self._bytes -= answer.size
