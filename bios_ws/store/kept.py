"""Each thread keeps its SQLite connection between its units of work.

Taking a connection from SQLAlchemy's pool and giving it back (with the pool's
own rollback) costs more than a read of a domain's row; a thread serving
requests one after the other can keep one instead. A unit of work takes its
thread's kept connection when it is free (a unit opened inside another gets one
from the pool as before) and leaves it kept when its transaction ended cleanly.
A kept connection counts as checked out of the pool, so the SQLite engine's pool
has no overflow limit (``engine.build_engine``). A thread that ends, or a store
that is disposed of, closes the connections it kept.
"""

from __future__ import annotations

import contextlib
import threading

from sqlalchemy import Connection


class _Kept:
    """One thread's kept connection (closed when the thread or the store lets go of it)."""

    __slots__ = ("conn", "in_use")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.in_use = True

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


class KeptConnections:
    """The connections the threads keep between their units of work, one each."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._open = True

    def take(self) -> Connection | None:
        """This thread's kept connection, if it keeps one and no unit uses it now."""
        kept: _Kept | None = getattr(self._local, "kept", None)
        if kept is None or kept.in_use:
            return None
        kept.in_use = True
        return kept.conn

    def keep(self, conn: Connection, *, clean: bool) -> bool:
        """Keep ``conn`` for this thread's next unit if its transaction ended ``clean``ly;
        False when it is not kept (the caller closes it)."""
        if not (clean and self._open) or conn.closed or conn.invalidated \
                or conn.in_transaction():
            self._drop(conn)
            return False
        kept: _Kept | None = getattr(self._local, "kept", None)
        if kept is None:
            self._local.kept = kept = _Kept(conn)
        elif kept.conn is not conn:
            return False  # another unit's: this thread keeps one already
        kept.in_use = False
        return True

    def _drop(self, conn: Connection) -> None:
        kept: _Kept | None = getattr(self._local, "kept", None)
        if kept is not None and kept.conn is conn:
            del self._local.kept

    def close(self) -> None:
        """No connection is kept from now on (this thread's is closed now, the others'
        when their unit ends or their thread does)."""
        self._open = False
        kept: _Kept | None = getattr(self._local, "kept", None)
        if kept is not None and not kept.in_use:
            del self._local.kept
            kept.conn.close()
