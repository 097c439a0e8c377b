"""The lock of one machine's directory, across threads and processes."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from bios_ws.errors import MachineError

_held = threading.local()


@contextlib.contextmanager
def machine_flock(directory: Path) -> Iterator[None]:
    """flock on ``directory/lock`` across processes; reentrant within a thread (a second
    flock on a new descriptor would wait for the first, in the same thread, forever)."""
    held: dict[Path, int] = _held.__dict__.setdefault("depth", {})
    if held.get(directory, 0):
        held[directory] += 1
        try:
            yield
        finally:
            held[directory] -= 1
        return
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(directory / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        held[directory] = 1
        try:
            yield
        finally:
            held[directory] = 0
    finally:
        os.close(fd)


def hold_for_life(path: Path, timeout: float = 15.0) -> int:
    """Lock ``path`` for the rest of this process's life (one keeper per machine; the
    lock frees itself when the process is gone). MachineError if another keeper holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd  # never closed: held until exit
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise MachineError("another keeper runs this machine") from None
            time.sleep(0.05)
