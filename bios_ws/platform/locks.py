"""The lock of one machine's directory, across threads and processes."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from pathlib import Path

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
