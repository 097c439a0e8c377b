"""Which work may run on a front worker's event loop thread, and the check that sends
the rest to a pool thread.

A worker first runs a complete request on its event loop thread (``on_event_loop``):
for a read of the local store that costs a quarter less server CPU than handing the
request to a pool thread and the answer back (bench/concurrency.py, 16 guests). Any
step that may wait (a write to the store and its sync, a store over the network, an
operation not declared loop-safe by its capability) calls ``may_block`` first: on the
loop it raises ``WouldBlock`` before any side effect, and the worker runs the whole
request again on a pool thread, where ``may_block`` does nothing.

``WouldBlock`` is a ``BaseException``: the error mapping turns every ``Exception``
into a SOAP fault, and this one must reach the worker instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_ON_LOOP: ContextVar[bool] = ContextVar("vbios_on_event_loop", default=False)


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
