"""``bios_ws.blocking``: what may wait raises on a worker's event loop, and only there."""

from __future__ import annotations

import pytest

from bios_ws.blocking import WouldBlock, may_block, on_event_loop, running_on_event_loop


def test_off_the_loop_a_step_that_may_wait_goes_on() -> None:
    assert not running_on_event_loop()
    may_block("a write")  # nothing raised


def test_on_the_loop_a_step_that_may_wait_raises_would_block_naming_it() -> None:
    with pytest.raises(WouldBlock, match="a write to the store"), on_event_loop():
        assert running_on_event_loop()
        may_block("a write to the store")
    assert not running_on_event_loop()  # reset on the way out, even by the exception


def test_would_block_passes_handlers_of_errors() -> None:
    """The error mapping turns every Exception into a fault: this one reaches the worker."""
    assert not issubclass(WouldBlock, Exception)
    with pytest.raises(WouldBlock), on_event_loop():
        try:
            may_block("a write")
        except Exception:  # what the SOAP layer's mapping catches
            pytest.fail("WouldBlock was caught as an error")


def test_nested_marks_restore_the_outer_one() -> None:
    with on_event_loop():
        with on_event_loop():
            pass
        assert running_on_event_loop()
    assert not running_on_event_loop()
