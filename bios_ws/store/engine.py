"""Engine creation and the translation of database failures into StoreUnavailable.

SQLite specifics live here: per-connection PRAGMAs and our own BEGIN, so that a
unit of work that writes takes the write lock at its start (``BEGIN IMMEDIATE``)
and concurrent writers queue (``store.writers``, then ``busy_timeout``) instead of
failing mid-way.

Durability: WAL with ``synchronous = NORMAL``, and a writing unit of work reports
success only once the WAL is synced to disk past its commit (``store.durability``:
one sync shared by the writers that committed meanwhile). An acknowledged write
survives a killed server and a power loss, as with ``synchronous = FULL``, whose
sync per commit, inside the writers' turn, was the larger part of a write's time
and all of its tail under concurrent writers.

PostgreSQL: the pool follows the threads of the process that use the store
(``threads``): each keeps a connection open, and may open a second one at once (its
domain's turn, ``store.turns``, beside its unit of work), so that no thread of a busy
server waits for a connection that another thread merely holds; docs/store.md has the
arithmetic against ``max_connections``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from bios_ws.errors import StoreConflict, StoreUnavailable
from bios_ws.store.urls import check_store_url

log = logging.getLogger("bios_ws.store")

#: Execution option telling the SQLite "begin" listener to take the write lock.
WRITE_LOCK_OPTION = "vbios_write_lock"

DEFAULT_BUSY_TIMEOUT_MS = 10_000

#: The background loops of a serving process that use the store: the simulated machines'
#: ticker, the thermal policy, the CRL keeper, the timers, the events' pruning
#: (``bootstrap.App.wsgi``).
BACKGROUND_LOOPS = 5
#: The threads that use the store in a server worker by default: its request threads
#: (``ServerOptions.threads``, 8) and its background loops.
DEFAULT_STORE_THREADS = 8 + BACKGROUND_LOOPS
#: Connections one thread may hold at once on PostgreSQL: its unit of work's and the one
#: holding its domain's turn around a long operation (``store.turns.PostgresTurns``).
CONNECTIONS_PER_THREAD = 2
#: Seconds a thread waits for a connection when the pool is at its limit.
POOL_TIMEOUT = 30


def parse_url(url: str) -> URL:
    """``url`` if vbios takes it (``store.urls``: SQLite, or psycopg 3 without password)."""
    return check_store_url(url)


def safe_url(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def pool_limits(threads: int) -> tuple[int, int]:
    """``(pool_size, max_overflow)`` of a PostgreSQL engine that ``threads`` threads use:
    one connection kept open per thread, and as many more opened when needed (closed
    again once returned to a full pool); ValueError unless ``threads`` >= 1."""
    if threads < 1:
        raise ValueError(f"a store is used by one thread at least, not {threads}")
    return threads, threads * (CONNECTIONS_PER_THREAD - 1)


def build_engine(url: URL, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
                 threads: int = DEFAULT_STORE_THREADS) -> Engine:
    """One Engine per store; for SQLite a file database with our PRAGMAs and BEGIN.

    ``threads``: how many threads of this process use the store (``pool_limits``; a
    serving worker: its request threads and ``BACKGROUND_LOOPS``). The SQLite pool
    needs no size: each thread keeps its connection (``store.kept``)."""
    pool_size, max_overflow = pool_limits(threads)
    with store_errors("cannot open the state store", show_reason=True):
        if url.get_backend_name() != "sqlite":
            return create_engine(url, pool_pre_ping=True, pool_timeout=POOL_TIMEOUT,
                                 pool_size=pool_size, max_overflow=max_overflow)
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise StoreUnavailable(
                "the SQLite state store must be a file path (sqlite:////abs/path/vbios.db)"
            )
        _create_private_file(database)
        # no overflow limit: each thread keeps a connection checked out (``store.kept``)
        engine = create_engine(url, pool_timeout=POOL_TIMEOUT, max_overflow=-1)
        _install_sqlite_listeners(engine, busy_timeout_ms)
        return engine


def _create_private_file(path: str) -> None:
    """Create the database file 0600 if missing; SQLite gives -wal/-shm the same mode."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreUnavailable(f"cannot create the state store file: {exc.strerror}") from None
    os.close(fd)


def _install_sqlite_listeners(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module: we emit BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()
            if not mode or str(mode[0]).lower() != "wal":
                log.warning("SQLite refused WAL journal mode (got %r)", mode)
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = bool(conn.get_execution_options().get(WRITE_LOCK_OPTION))
        # On the driver's connection: exec_driver_sql costs ~10x the BEGIN itself.
        # Its errors are sqlite3.Error, which store_errors() translates too.
        driver = driver_connection(conn)
        if driver.in_transaction:  # a reading unit began it on the driver (store.sql)
            return
        driver.execute("BEGIN IMMEDIATE" if immediate else "BEGIN").close()


def driver_connection(conn: Connection) -> Any:
    """The DB-API connection under ``conn`` (the sqlite3 one, for SQLite)."""
    driver = conn.connection.driver_connection
    if driver is None:
        raise StoreUnavailable("the state store connection is closed")
    return driver


@contextmanager
def store_errors(
    what: str = "the state store is unavailable", *, show_reason: bool = False
) -> Iterator[None]:
    """Turn any database failure into StoreUnavailable.

    The reason (the driver's message, never SQL or parameters) goes to the log,
    and into the error only with ``show_reason`` (admin-facing opening errors).
    """
    try:
        yield
    except (SQLAlchemyError, sqlite3.Error) as exc:
        reason = _reason(exc)
        log.warning("%s: %s", what, reason)
        error = StoreConflict if _sqlstate(exc) in CONFLICT_SQLSTATES else StoreUnavailable
        raise error(f"{what}: {reason}" if show_reason else what) from None


#: PostgreSQL's serialization failure and detected deadlock: the transaction may be run
#: again (``store.retry``).
CONFLICT_SQLSTATES = frozenset({"40001", "40P01"})


def _sqlstate(exc: Exception) -> str | None:
    state = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return state if isinstance(state, str) else None


def _reason(exc: Exception) -> str:
    """The driver's first message line: never the SQL statement or its parameters."""
    orig = getattr(exc, "orig", None)
    source: BaseException = orig if isinstance(orig, BaseException) else exc
    lines = str(source).strip().splitlines()
    first = lines[0] if lines else ""
    if orig is None:
        first = first.split("[SQL:")[0].strip()
    return f"{type(source).__name__}: {first[:200]}"
