"""Acknowledged writes are on the disk: SQLite's WAL synced once for many commits.

SQLite commits here with ``synchronous = NORMAL``: the commit's frames are in the
WAL file (the OS's cache) when ``COMMIT`` returns, not yet on the disk. Before a
writing unit of work reports success, ``WalSync.wait_durable`` waits until an
``fsync`` of the WAL that began after its commit has completed. That is the
guarantee of ``synchronous = FULL`` (a write acknowledged is on the disk, and
survives a power loss, not only a killed process), with one difference: writers
that commit while a sync runs do not each sync after their own commit, they
share the next one (group commit), and they wait for it after giving the
writers' turn back, so the next writer commits meanwhile.

SQLite itself syncs the WAL before a checkpoint and the database after one, so a
commit whose frames a checkpoint moved into the database before our sync is on
the disk too. When the WAL file is replaced or gone, the database file is synced
as well, through one descriptor per process that is never closed: closing any
descriptor of the database file would drop every POSIX lock SQLite holds on it
in this process, and another process could then delete the WAL in use (SQLite's
"database disk image is malformed"). The WAL file itself carries no lock.
"""

from __future__ import annotations

import logging
import os
import threading

from bios_ws.errors import StoreUnavailable

log = logging.getLogger("bios_ws.store")


#: (process, database path) -> a descriptor of the database file, never closed (see above).
_DATABASE_DESCRIPTORS: dict[tuple[int, str], int] = {}
_DESCRIPTORS_LOCK = threading.Lock()


def _database_descriptor(path: str) -> int:
    key = (os.getpid(), os.path.realpath(path))
    with _DESCRIPTORS_LOCK:
        fd = _DATABASE_DESCRIPTORS.get(key)
        if fd is None:
            fd = _DATABASE_DESCRIPTORS[key] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        return fd


class WalSync:
    """Group commit for the writers of one SQLite database, in one process. Thread-safe."""

    def __init__(self, database: str) -> None:
        self._database = database
        self._wal = f"{database}-wal"
        self._count_lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._committed = 0
        self._synced = 0
        self._fd: int | None = None
        self._fd_pid = 0

    def committed(self) -> int:
        """Count a commit that has just returned; its ticket for ``wait_durable``."""
        with self._count_lock:
            self._committed += 1
            return self._committed

    def wait_durable(self, ticket: int) -> None:
        """Return once a sync that began after commit ``ticket`` has completed."""
        if self._synced >= ticket:
            return
        with self._sync_lock:
            if self._synced >= ticket:  # a sync that began after it completed meanwhile
                return
            with self._count_lock:
                covered = self._committed
            self._sync()
            self._synced = covered

    def _sync(self) -> None:
        try:
            fd = self._wal_descriptor()
            if fd is None:
                self._sync_path(self._database)
            else:
                os.fsync(fd)
        except OSError as exc:
            log.error("cannot sync the state store to disk: %s", exc.strerror)
            raise StoreUnavailable("the state store cannot be synced to disk") from None

    def _wal_descriptor(self) -> int | None:
        """This process's descriptor of the current WAL file (None when there is none):
        reopened after a fork or when SQLite replaced the file, syncing the database
        then too (a replaced WAL was checkpointed into it)."""
        try:
            current = os.stat(self._wal).st_ino
        except FileNotFoundError:
            return None
        if self._fd is not None and self._fd_pid == os.getpid() \
                and os.fstat(self._fd).st_ino == current:
            return self._fd
        self.close()
        self._sync_path(self._database)
        self._fd = os.open(self._wal, os.O_RDONLY | os.O_CLOEXEC)
        self._fd_pid = os.getpid()
        return self._fd

    @staticmethod
    def _sync_path(path: str) -> None:
        os.fsync(_database_descriptor(path))

    def close(self) -> None:
        if self._fd is not None and self._fd_pid == os.getpid():
            os.close(self._fd)
        self._fd = None
