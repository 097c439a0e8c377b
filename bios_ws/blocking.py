"""Which work may run on a front worker's event loop thread, and the check that sends
the rest to a pool thread.

A worker first runs a complete request on its event loop thread (``on_event_loop``):
for a read of the local store that costs a quarter less server CPU than handing the
request to a pool thread and the answer back (bench/concurrency.py, 16 guests). Any
step that may wait (a write to the store and its sync, a store over the network, an
operation not declared loop-safe by its capability) calls ``may_block`` first: on the
loop it raises ``WouldBlock`` before any side effect, and the worker runs the whole
request again on a pool thread, where ``may_block`` does nothing.

A routed call (``server.forwarding``) raises ``AwaitOnLoop`` instead: its wait is a round
trip the loop makes itself (``server.remote_pool_async``), with no thread at all.

A read that may wait for news (GetEvents with a Wait) and finds none calls
``wait_for_events``: within a front that can park requests (``parking``) it raises
``WaitForEvents``, and the worker parks the request on its loop, holding no thread, until
an event it wants may exist or its wait is over, then runs it again whole
(``bios_ws.server.parking``); elsewhere it returns and the read answers at once.

``WouldBlock`` and ``WaitForEvents`` are ``BaseException``s: the error mapping turns every
``Exception`` into a SOAP fault, and these must reach the worker instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bios_ws.domain.events import EventMark

_ON_LOOP: ContextVar[bool] = ContextVar("vbios_on_event_loop", default=False)
_MAY_PARK: ContextVar[bool] = ContextVar("vbios_may_park", default=False)

#: ``feed(cursor, limit)``: scope and type of the first ``limit`` events after ``cursor``
#: (one cheap read for every request parked on it).
EventFeed = Callable[[int, int], "Sequence[EventMark]"]


class WouldBlock(BaseException):
    """Raised on the event loop by a step that may wait: run the request on a thread."""


@contextmanager
def on_event_loop() -> Iterator[None]:
    """Within: ``may_block`` raises ``WouldBlock``."""
    token = _ON_LOOP.set(True)
    try:
        yield
    finally:
        _ON_LOOP.reset(token)


def running_on_event_loop() -> bool:
    return _ON_LOOP.get()


def may_block(what: str) -> None:
    """Call before ``what`` may wait: WouldBlock when running on the event loop."""
    if _ON_LOOP.get():
        raise WouldBlock(what)


class AwaitOnLoop(BaseException):
    """Raised on the event loop by a step that waits for I/O the loop can do itself (a
    routed call's round trip to its remote, ``server.forwarding``): the worker awaits
    ``answer()`` on the loop, holding no thread, and it is the request's answer (a
    ``server.wsgi_call.Answer``). Raised before any side effect, as ``WouldBlock`` is."""

    def __init__(self, what: str, answer: Callable[[], Awaitable[Any]]) -> None:
        super().__init__(what)
        self.answer = answer


class WaitForEvents(BaseException):
    """Raised by a read that found nothing after its cursor and may wait: park the request
    until ``feed`` shows an event after ``after`` that ``wanted`` accepts (then run it
    again), or for ``seconds`` (then run it once more, waiting off: it answers)."""

    def __init__(self, *, after: int, seconds: float, feed: EventFeed,
                 wanted: Callable[[EventMark], bool]) -> None:
        super().__init__(f"waits {seconds:g} s for events after {after}")
        self.after = after
        self.seconds = seconds
        self.feed = feed
        self.wanted = wanted


@contextmanager
def parking(allowed: bool) -> Iterator[None]:
    """Within: ``wait_for_events`` raises ``WaitForEvents`` if ``allowed`` (a front that
    parks requests runs them so; with ``allowed`` false once their wait is over)."""
    token = _MAY_PARK.set(allowed)
    try:
        yield
    finally:
        _MAY_PARK.reset(token)


def wait_for_events(*, after: int, seconds: float, feed: EventFeed,
                    wanted: Callable[[EventMark], bool]) -> None:
    """A read found nothing after ``after``: WaitForEvents when the request may be parked
    and asked to wait; otherwise nothing (the read answers what it has)."""
    if seconds > 0 and _MAY_PARK.get():
        raise WaitForEvents(after=after, seconds=seconds, feed=feed, wanted=wanted)
