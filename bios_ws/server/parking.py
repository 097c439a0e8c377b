"""Requests parked on a worker's event loop while they wait for events: no thread is held.

A long poll (GetEvents with a Wait) is a loop-safe read. When it finds nothing after its
cursor it raises ``WaitForEvents`` (``bios_ws.blocking``) before answering, and the
worker parks the request here: a future, a timer at its deadline and what it waits
for. While anything is parked, one task asks the store what came: every
``POLL_INTERVAL`` seconds, and at once after this worker ran a request on a pool thread
(it may have written), it reads the marks (id, scope, type) of the events after the
oldest cursor among the parked requests, one read for all of them. Events are appended
by every process that changes state (other workers, the CLI, QEMU keepers), so the
store is the one place that knows; the read is one range of the events' primary key.

A request whose filter wants one of the new marks runs again, whole, as it came (it
reads its events and answers, or parks again until the same deadline if what it saw
was not for it after all). At the deadline it runs once more with waiting off and
answers what it has: no events, and its cursor. A stopping worker does that at once for
every parked request. Time bounds of the front do not apply meanwhile: they bound the
reading of a request and the writing of its answer, not the application's work
(``exchange``), and the wait itself is at most ``MAX_WAIT_SECONDS``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar

from bios_ws.blocking import EventFeed, WaitForEvents, WouldBlock, on_event_loop
from bios_ws.domain.events import MAX_WAIT_SECONDS, EventMark

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Seconds between two reads of the new events' marks while requests are parked: how late
#: a parked request learns of an event another process appended (bench/events.py).
POLL_INTERVAL = 0.2
#: A request larger than this is never parked (a GetEvents is a few hundred bytes): a
#: parked request keeps its bytes until it answers.
MAX_PARKED_BYTES = 16_384
#: Marks read at once; more pages are read in the same check, up to ``MAX_PAGES``.
FEED_PAGE = 1000
MAX_PAGES = 10


@dataclass(eq=False)
class _Parked:
    wait: WaitForEvents
    #: Resolved with True to answer now (deadline, stop), False to run again.
    future: asyncio.Future[bool]
    #: The newest event known not to concern it.
    after: int

    def release(self, final: bool) -> None:
        if not self.future.done():
            self.future.set_result(final)


class ParkingLot:
    """The parked requests of one worker (see the module docstring)."""

    def __init__(self, pool: Executor, *, poll_interval: float = POLL_INTERVAL) -> None:
        self._pool = pool
        self.poll_interval = poll_interval
        self._parked: set[_Parked] = set()
        self._poked: asyncio.Event | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False
        #: Reads of the marks made so far (for tests and figures).
        self.checks = 0

    @property
    def parked(self) -> int:
        return len(self._parked)

    async def run(self, attempt: Callable[[bool], Awaitable[T]], *, size: int = 0) -> T:
        """``attempt(may_park)`` until it answers: parked between attempts that raise
        ``WaitForEvents``; the last one with ``may_park`` false once the wait is over. A
        request of more than ``MAX_PARKED_BYTES`` (its ``size``) runs once, not parked."""
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        may_park = not self._closed and size <= MAX_PARKED_BYTES
        while True:
            try:
                return await attempt(may_park)
            except WaitForEvents as wait:
                if not may_park:
                    raise RuntimeError("a request raised WaitForEvents with waiting off"
                                       ) from None
                if deadline is None:
                    deadline = loop.time() + min(wait.seconds, MAX_WAIT_SECONDS)
                may_park = not await self._park(wait, deadline)

    async def _park(self, wait: WaitForEvents, deadline: float) -> bool:
        """Park until woken (False) or until ``deadline`` or the worker stops (True)."""
        loop = asyncio.get_running_loop()
        if self._closed or loop.time() >= deadline:
            return True
        parked = _Parked(wait, loop.create_future(), wait.after)
        timer = loop.call_at(deadline, parked.release, True)
        self._parked.add(parked)
        if self._watcher is None:
            self._poked = asyncio.Event()
            self._watcher = asyncio.create_task(self._watch(), name="vbios-parking")
        try:
            return await parked.future
        finally:
            timer.cancel()
            self._parked.discard(parked)

    def poke(self) -> None:
        """An event may have been appended here: check now rather than at the next tick."""
        if self._poked is not None:
            self._poked.set()

    def release_all(self) -> None:
        """The worker stops: every parked request answers now, and none parks any more."""
        self._closed = True
        for parked in list(self._parked):
            parked.release(True)

    def close(self) -> None:
        """The worker has stopped: the watching task ends (nothing is parked any more)."""
        self.release_all()
        if self._watcher is not None:
            self._watcher.cancel()

    async def _watch(self) -> None:
        assert self._poked is not None
        try:
            while self._parked:
                try:
                    async with asyncio.timeout(self.poll_interval):
                        await self._poked.wait()
                except TimeoutError:
                    pass
                self._poked.clear()
                try:
                    await self.check()
                except Exception:  # never leave them parked unheard: they read themselves
                    log.exception("checking the parked requests failed")
                    for parked in list(self._parked):
                        parked.release(False)
        finally:
            self._watcher = self._poked = None

    async def check(self) -> None:
        """Read the marks of the new events once per feed (feeds are told apart by
        equality: the bound methods of one use case are equal) and wake whom they concern."""
        by_feed: dict[EventFeed, list[_Parked]] = {}
        for parked in self._parked:
            if not parked.future.done():
                by_feed.setdefault(parked.wait.feed, []).append(parked)
        for feed, waiting in by_feed.items():
            try:
                await self._check_feed(feed, waiting)
            except Exception:  # the store failed: the requests run again and answer it
                log.warning("reading new events for parked requests failed", exc_info=True)
                for parked in waiting:
                    parked.release(False)

    async def _check_feed(self, feed: EventFeed, waiting: list[_Parked]) -> None:
        woken: list[_Parked] = []
        for _ in range(MAX_PAGES):
            if not waiting:
                break
            self.checks += 1
            marks = await self._read(feed, min(parked.after for parked in waiting))
            last = marks[-1].event_id if marks else 0
            still = []
            for parked in waiting:
                if any(mark.event_id > parked.after and parked.wait.wanted(mark)
                       for mark in marks):
                    woken.append(parked)
                else:
                    parked.after = max(parked.after, last)
                    still.append(parked)
            waiting = still
            if len(marks) < FEED_PAGE:
                break
        else:
            woken += waiting  # a flood: the rest read for themselves
        await _in_turn(woken)

    async def _read(self, feed: EventFeed, after: int) -> Sequence[EventMark]:
        """The feed's marks after ``after``: on the loop (a local read), or on a pool thread
        when the store would wait (``WouldBlock``)."""
        try:
            with on_event_loop():
                return feed(after, FEED_PAGE)
        except WouldBlock:
            pass
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, feed, after, FEED_PAGE)


async def _in_turn(parked: Sequence[_Parked]) -> None:
    """Run them again one per turn of the loop: between two, the loop reads what the
    other connections sent. Woken at once, an event's subscribers would run back to
    back (half a millisecond each) and hold every other request up for all of them."""
    for one in parked:
        one.release(False)
        await asyncio.sleep(0)
