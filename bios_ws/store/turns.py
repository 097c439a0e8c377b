"""Per-domain turns of the SQL stores (``ports.DomainTurns``): who may run a long operation
(a power request, a firmware apply) on a domain now.

PostgreSQL, shared by hosts: a transaction-scoped advisory lock
(``pg_advisory_xact_lock``) on a hash of the domain id, held by a transaction of its
own on a connection of its own for as long as the operation runs, released by its
rollback (or by the server when the connection dies). Transaction-scoped, so it works
behind PgBouncer's transaction pooling, where session-level locks do not. A deadlock
the server detects while waiting (SQLSTATE 40P01) is retried (``store.retry``).

SQLite, one host: the threads of this process (``ThreadTurns``), then an ``flock`` on a
file per domain beside the database for its processes (the kernel lets go for a
process that dies).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

from bios_ws.domain.turns import ReentrantTurns, ThreadTurns
from bios_ws.store.engine import store_errors
from bios_ws.store.retry import retry_conflicts

#: The first key of the two-key advisory locks of domain turns (the one-key space, where
#: the schema's lock lives, does not overlap it): "vbdt".
TURN_LOCK_CLASS = 0x76626474


def turn_lock_key(domain_id: str) -> int:
    """The second key: a signed 32-bit hash of the domain id (a collision only makes two
    domains take turns with each other)."""
    digest = hashlib.sha256(domain_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


class PostgresTurns(ReentrantTurns):
    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self._engine = engine

    @contextmanager
    def _hold(self, domain_id: str) -> Iterator[None]:
        with store_errors():
            conn = self._engine.connect()
        try:
            def wait() -> None:
                with store_errors():
                    if conn.in_transaction():
                        conn.rollback()
                    conn.begin()
                    conn.execute(text("SELECT pg_advisory_xact_lock(:kind, :key)"),
                                 {"kind": TURN_LOCK_CLASS, "key": turn_lock_key(domain_id)})

            retry_conflicts(wait)
            yield
        finally:
            conn.close()  # rolls back: the lock goes with the transaction


class SqliteTurns(ThreadTurns):
    def __init__(self, database: str) -> None:
        super().__init__()
        folder, name = os.path.split(database)
        self._folder = Path(folder) / f".{name}.turns"

    @contextmanager
    def _hold(self, domain_id: str) -> Iterator[None]:
        with super()._hold(domain_id):
            self._folder.mkdir(mode=0o700, exist_ok=True)
            name = hashlib.sha256(domain_id.encode("utf-8")).hexdigest()[:32]
            fd = os.open(self._folder / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
                         | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)
