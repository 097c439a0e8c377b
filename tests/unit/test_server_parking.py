"""The parking of long polls (``bios_ws.server.parking``), on an event loop with fake
requests and feeds: a request that raises WaitForEvents waits, holding nothing, until a
mark it wants shows up (then runs again), until its deadline (then runs once more with
waiting off) or until the worker stops; one read of the feed serves every parked
request."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from bios_ws.blocking import WaitForEvents, may_block
from bios_ws.domain.events import EventMark, EventType
from bios_ws.server.parking import FEED_PAGE, MAX_PARKED_BYTES, ParkingLot

SETTINGS = EventType.SETTINGS_CHANGED


@dataclass(eq=False)
class Feed:
    """Marks appended by the test; counts its reads; ``fail`` makes reads raise."""

    marks: list[EventMark] = field(default_factory=list)
    reads: list[int] = field(default_factory=list)
    threads: list[str] = field(default_factory=list)
    fail: bool = False
    blocks: bool = False

    def __call__(self, after: int, limit: int) -> Sequence[EventMark]:
        if self.blocks:
            may_block("a store over the network")
        self.reads.append(after)
        self.threads.append(threading.current_thread().name)
        if self.fail:
            raise OSError("the store went away")
        return [m for m in self.marks if m.event_id > after][:limit]

    def add(self, scope: str, kind: EventType = SETTINGS) -> None:
        self.marks.append(EventMark(len(self.marks) + 1, scope, kind))


@dataclass
class Request:
    """Reads the feed like GetEvents: answers the wanted marks after its cursor, or
    raises WaitForEvents when there are none and it may park. Records every run."""

    feed: Feed
    scope: str
    cursor: int = 0
    seconds: float = 30.0
    runs: list[bool] = field(default_factory=list)

    async def __call__(self, may_park: bool) -> list[int]:
        self.runs.append(may_park)
        found = [m.event_id for m in self.feed.marks
                 if m.event_id > self.cursor and m.scope == self.scope]
        if not found and may_park:
            head = self.feed.marks[-1].event_id if self.feed.marks else 0
            raise WaitForEvents(after=head, seconds=self.seconds, feed=self.feed,
                                wanted=lambda mark: mark.scope == self.scope)
        return found


def run(test: Callable[[ParkingLot], Awaitable[None]], poll: float = 0.01) -> None:
    async def main() -> None:
        with ThreadPoolExecutor(2, thread_name_prefix="pool") as pool:
            await test(ParkingLot(pool, poll_interval=poll))
    asyncio.run(main())


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.001)


def test_a_request_with_something_to_answer_is_never_parked() -> None:
    async def test(lot: ParkingLot) -> None:
        feed = Feed()
        feed.add("vm1")
        request = Request(feed, "vm1")
        assert await lot.run(request) == [1]
        assert request.runs == [True] and lot.parked == 0 and feed.reads == []
    run(test)


def test_a_parked_request_runs_again_once_an_event_it_wants_comes() -> None:
    async def test(lot: ParkingLot) -> None:
        feed = Feed()
        request = Request(feed, "vm1")
        answer = asyncio.create_task(lot.run(request))
        await until(lambda: lot.parked == 1)
        feed.add("vm2")  # not for it: it stays parked, knowing event 1 is not its
        await until(lambda: len(feed.reads) >= 2)
        assert not answer.done() and request.runs == [True]
        feed.add("vm1")
        assert await answer == [2]
        assert request.runs == [True, True] and lot.parked == 0
    run(test)


def test_a_wait_that_is_over_runs_once_more_with_waiting_off() -> None:
    async def test(lot: ParkingLot) -> None:
        request = Request(Feed(), "vm1", seconds=0.05)
        assert await lot.run(request) == []
        assert request.runs == [True, False] and lot.parked == 0
    run(test)


def test_the_deadline_is_the_first_runs_even_when_woken_for_nothing() -> None:
    """Woken by events it then finds are not for it (its feed's filter is coarser than its
    read), it parks again until the same deadline, not a new one."""
    async def test(lot: ParkingLot) -> None:
        feed = Feed()
        request = Request(feed, "vm1", seconds=0.2)

        async def attempt(may_park: bool) -> list[int]:
            try:
                return await request(may_park)
            except WaitForEvents as wait:
                feed.add("vm9")  # someone else's event: it will wake this one for nothing
                raise WaitForEvents(after=wait.after, seconds=wait.seconds, feed=feed,
                                    wanted=lambda mark: True) from None
        assert await lot.run(attempt) == []
        assert len(request.runs) > 2 and request.runs[-1] is False
        assert request.runs[:-1] == [True] * (len(request.runs) - 1)
    run(test, poll=0.01)


def test_one_read_of_the_feed_serves_every_parked_request() -> None:
    async def test(lot: ParkingLot) -> None:
        feed = Feed()
        requests = [Request(feed, f"vm{n % 4}") for n in range(100)]
        answers = [asyncio.create_task(lot.run(r)) for r in requests]
        await until(lambda: lot.parked == 100)
        feed.reads.clear()
        lot.checks = 0
        feed.add("vm1")
        await until(lambda: lot.parked == 75)
        assert lot.checks == len(feed.reads) >= 1
        assert all(answers[n].done() == (n % 4 == 1) for n in range(100))
        for scope in ("vm0", "vm2", "vm3"):
            feed.add(scope)
        assert [len(a) for a in await asyncio.gather(*answers)] == [1] * 100
    run(test)


def test_a_stopping_worker_answers_every_parked_request_at_once() -> None:
    async def test(lot: ParkingLot) -> None:
        requests = [Request(Feed(), "vm1") for _ in range(3)]
        answers = [asyncio.create_task(lot.run(r)) for r in requests]
        await until(lambda: lot.parked == 3)
        lot.release_all()
        assert await asyncio.gather(*answers) == [[], [], []]
        assert all(r.runs == [True, False] for r in requests)
        late = Request(Feed(), "vm1")
        assert await lot.run(late) == [] and late.runs == [False]
    run(test)


def test_a_failing_feed_runs_the_parked_requests_again() -> None:
    async def test(lot: ParkingLot) -> None:
        feed = Feed(fail=True)
        request = Request(feed, "vm1", seconds=0.3)
        await lot.run(request)
        assert len(request.runs) >= 3  # parked, run again after each failed read, ...
        assert request.runs[-1] is False  # ... until the wait was over
    run(test, poll=0.02)


def test_a_feed_that_would_block_is_read_on_a_pool_thread() -> None:
    async def test(lot: ParkingLot) -> None:
        feed = Feed(blocks=True)
        request = Request(feed, "vm1")
        answer = asyncio.create_task(lot.run(request))
        await until(lambda: lot.parked == 1)
        feed.marks.append(EventMark(1, "vm1", SETTINGS))
        assert await answer == [1]
        assert feed.threads and all(name.startswith("pool") for name in feed.threads)
    run(test)


def test_a_flood_of_marks_is_read_in_pages() -> None:
    async def test(lot: ParkingLot) -> None:
        feed = Feed()
        request = Request(feed, "vm1")
        answer = asyncio.create_task(lot.run(request))
        await until(lambda: lot.parked == 1)
        for _ in range(FEED_PAGE + 10):
            feed.add("vm2")
        feed.add("vm1")
        assert await answer == [FEED_PAGE + 11]
        assert FEED_PAGE in feed.reads  # the second page, in the same check
    run(test)


def test_a_poke_checks_at_once_rather_than_at_the_next_tick() -> None:
    async def test(lot: ParkingLot) -> None:
        feed = Feed()
        request = Request(feed, "vm1")
        answer = asyncio.create_task(lot.run(request))
        await until(lambda: lot.parked == 1)
        feed.add("vm1")
        lot.poke()
        assert await answer == [1]  # an hour's poll interval: only the poke could wake it
    run(test, poll=3600)


def test_a_request_that_asks_to_wait_when_it_may_not_is_a_bug() -> None:
    async def test(lot: ParkingLot) -> None:
        async def stubborn(may_park: bool) -> None:
            raise WaitForEvents(after=0, seconds=1, feed=Feed(), wanted=lambda m: True)
        lot.release_all()
        with pytest.raises(RuntimeError, match="waiting off"):
            await lot.run(stubborn)
    run(test)


def test_a_large_request_is_never_parked() -> None:
    async def test(lot: ParkingLot) -> None:
        request = Request(Feed(), "vm1")
        assert await lot.run(request, size=MAX_PARKED_BYTES + 1) == []
        assert request.runs == [False] and lot.parked == 0
    run(test)
