"""Writers of one SQLite database wait their turn in the kernel, not in SQLite's busy handler.

SQLite lets one writer in at a time; a writer that finds the database locked
polls it from its busy handler, sleeping 1, 2, 5 ... 100 ms between tries, so
under a dozen concurrent writers some wait far longer than the writes before
them took. ``WriterTurns`` queues the writing units of work in front of
``BEGIN IMMEDIATE`` instead: a lock for the threads of this process, then an
``flock`` on a file beside the database for the processes (the kernel wakes
the next waiter the moment the holder lets go, and lets go for a process that
dies). SQLite's own lock still guards the data; the turns only spare the polling.

A thread that already holds the turn (a unit of work opened inside another
one) does not wait for it again: it goes straight to SQLite, as before. A
thread that waits longer than the busy timeout for this process's turn goes
to SQLite too, whose busy timeout then decides.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading

log = logging.getLogger("bios_ws.store")


class WriterTurns:
    """The turn of one writer at a time, among this process's threads and all processes."""

    def __init__(self, lock_path: str, timeout_seconds: float) -> None:
        self._path = lock_path
        self._timeout = timeout_seconds
        self._threads = threading.Lock()
        self._holder: int | None = None
        self._fd: int | None = None
        self._fd_pid = 0

    def take(self) -> bool:
        """Wait for the turn; False when this thread did not take it (see the module)."""
        me = threading.get_ident()
        if self._holder == me or not self._threads.acquire(timeout=self._timeout):
            return False
        try:
            fcntl.flock(self._file(), fcntl.LOCK_EX)
        except OSError as exc:
            self._threads.release()
            log.warning("cannot queue for the state store's write lock: %s", exc.strerror)
            return False
        self._holder = me
        return True

    def give_back(self) -> None:
        """End the turn ``take`` gave (call only after a ``take`` that returned True)."""
        self._holder = None
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def _file(self) -> int:
        """This process's descriptor of the lock file (opened again after a fork: a
        descriptor shared with the parent would share its lock)."""
        pid = os.getpid()
        if self._fd is None or self._fd_pid != pid:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._fd_pid = pid
        return self._fd

    def close(self) -> None:
        if self._fd is not None and self._fd_pid == os.getpid():
            os.close(self._fd)
        self._fd = None
