"""Per-domain turns within one process (``ports.DomainTurns``): the fake beside the store's
adapters, and the reentrancy they all share.

``ThreadTurns`` serialises the threads of this process only: the memory store's turns,
and the default of a use case given none. ``ReentrantTurns`` is the base of every
adapter: a thread already holding a domain's turn goes on without waiting for it again
(on PostgreSQL a second wait, on another connection, would wait for itself forever).
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager

from bios_ws.domain.ports import DomainTurns


class ReentrantTurns(DomainTurns):
    """Reentrancy per thread; ``_hold`` takes the turn for real."""

    def __init__(self) -> None:
        self._held = threading.local()

    def turn(self, domain_id: str) -> AbstractContextManager[None]:
        return self._turn(domain_id)

    @contextmanager
    def _turn(self, domain_id: str) -> Iterator[None]:
        held: dict[str, int] = self._held.__dict__.setdefault("depth", {})
        if held.get(domain_id, 0):
            held[domain_id] += 1
            try:
                yield
            finally:
                held[domain_id] -= 1
            return
        with self._hold(domain_id):
            held[domain_id] = 1
            try:
                yield
            finally:
                del held[domain_id]

    @abc.abstractmethod
    def _hold(self, domain_id: str) -> AbstractContextManager[None]:
        """Wait for the domain's turn (this thread does not hold it) and hold it."""


class ThreadTurns(ReentrantTurns):
    """The threads of this process, one per domain at a time."""

    def __init__(self) -> None:
        super().__init__()
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}

    @contextmanager
    def _hold(self, domain_id: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(domain_id, threading.Lock())
        with lock:
            yield
