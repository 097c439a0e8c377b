"""SqlStore: the ports of ``bios_ws.domain.ports`` over SQLAlchemy Core.

One Engine per store, one Connection and one transaction per unit of work.
A unit of work begins lazily, at its first operation: a write (``get`` with
``for_update``, ``add``, ``save``, ``delete``, ``append``) begins with the write
lock (SQLite ``BEGIN IMMEDIATE``), a read with a plain snapshot. The use cases
always start a writing unit with a write, so writers queue instead of failing
when they upgrade a read snapshot. On PostgreSQL ``for_update`` is
``SELECT ... FOR UPDATE`` and audit appends lock one ``meta`` row. The audit
tables' adapters live in ``store.audit``.
"""

from __future__ import annotations

import os
import traceback
from datetime import datetime

from sqlalchemy import Connection, Engine, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from bios_ws.blocking import may_block
from bios_ws.domain.ports import (
    DomainRepository,
    DomainSummary,
    DomainTurns,
    UnitOfWork,
)
from bios_ws.domain.state import DomainState
from bios_ws.errors import DomainExists, DomainNotFound, StoreUnavailable, VersionConflict
from bios_ws.store import migrations, schema
from bios_ws.store.audit import SqlAudit, SqlRefusals
from bios_ws.store.codec import DecodedStates, encode_state, time_from_text, time_to_text
from bios_ws.store.credentials import SqlCredentials
from bios_ws.store.durability import WalSync
from bios_ws.store.engine import (
    DEFAULT_BUSY_TIMEOUT_MS,
    DEFAULT_STORE_THREADS,
    WRITE_LOCK_OPTION,
    build_engine,
    driver_connection,
    log,
    parse_url,
    safe_url,
    store_errors,
)
from bios_ws.store.events import SqlEvents
from bios_ws.store.firmware import SqlFirmware
from bios_ws.store.firmware_trust import SqlFirmwareTrust
from bios_ws.store.hosts import SqlHostGrants, SqlHosts
from bios_ws.store.kept import KeptConnections
from bios_ws.store.machines import SqlMachines
from bios_ws.store.prepared import Prepared
from bios_ws.store.records import SqlRecords
from bios_ws.store.routing import SqlRouting
from bios_ws.store.system import SqlSel, SqlTimers
from bios_ws.store.thermal import SqlThermal
from bios_ws.store.turns import PostgresTurns, SqliteTurns
from bios_ws.store.writers import WriterTurns

# Statements built once: building a select costs more than running it on SQLite.
_domains = schema.domains
_GET_DOMAIN_QUERY = select(_domains.c.version, _domains.c.state).where(
    _domains.c.domain_id == bindparam("domain_id")
)
_GET_DOMAIN = Prepared(_GET_DOMAIN_QUERY)
_GET_DOMAIN_FOR_UPDATE = Prepared(_GET_DOMAIN_QUERY.with_for_update())  # SQLite: locked
_SAVE_DOMAIN = Prepared(
    update(_domains)
    .where(_domains.c.domain_id == bindparam("key_id"))
    .where(_domains.c.version == bindparam("expected_version"))
    .values(version=bindparam("new_version"), state=bindparam("new_state"))
)
_DOMAIN_VERSION = select(_domains.c.version).where(_domains.c.domain_id == bindparam("domain_id"))


class SqlStore:
    """The state store. Thread-safe: each unit of work takes its own connection."""

    def __init__(self, engine: Engine, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS) -> None:
        self._engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._states = DecodedStates()
        self._turns = (WriterTurns(writers_lock_path(engine.url.database or ""),
                                   busy_timeout_ms / 1000) if self._sqlite else None)
        self._kept = KeptConnections() if self._sqlite else None
        self._sync = WalSync(engine.url.database or "") if self._sqlite else None
        #: Each domain's turn for long operations (``store.turns``).
        self.turns: DomainTurns = (SqliteTurns(engine.url.database or "") if self._sqlite
                                   else PostgresTurns(engine))

    @property
    def engine(self) -> Engine:
        """For diagnostics and tests; the application goes through units of work."""
        return self._engine

    def unit_of_work(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self._engine, self._sqlite, self._states, self._turns, self._kept,
                             self._sync)

    def schema_version(self) -> int:
        with store_errors(), self._engine.connect() as conn:
            version = migrations.read_schema_version(conn)
            conn.rollback()
        if version is None:
            raise StoreUnavailable("the state store has no schema")
        return version

    def dispose(self) -> None:
        if self._kept is not None:
            self._kept.close()
        self._engine.dispose()
        if self._turns is not None:
            self._turns.close()
        if self._sync is not None:
            self._sync.close()


def _warn_read_then_write() -> None:
    """SQLite cannot make a read snapshot a write once another writer committed after it
    began: the write fails at once with "database is locked" (no busy wait). A unit that
    reads then writes must call ``begin_writing`` first; one that does not is named in the
    log (once per place), so the race is found before it happens."""
    caller = next((frame for frame in reversed(traceback.extract_stack()[:-2])
                   if "/bios_ws/store/" not in frame.filename), None)
    where = "an unknown caller" if caller is None else f"{caller.filename}:{caller.lineno}"
    if where not in _WARNED_READ_THEN_WRITE:
        _WARNED_READ_THEN_WRITE.add(where)
        log.warning("a unit of work began reading, then wrote (%s): under concurrent writers"
                    " SQLite refuses it; call begin_writing first", where)


_WARNED_READ_THEN_WRITE: set[str] = set()


def writers_lock_path(database: str) -> str:
    """The file whose ``flock`` queues the writers of SQLite file ``database``."""
    folder, name = os.path.split(database)
    return os.path.join(folder, f".{name}.lock")


def open_store(url: str, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
               upgrade: bool | None = None, threads: int = DEFAULT_STORE_THREADS
               ) -> SqlStore:
    """Open (creating or checking its schema) the store at ``url``.

    ``sqlite:////abs/path/vbios.db`` by default; a ``postgresql+psycopg://`` URL
    runs the same code. StoreUnavailable if it cannot be opened, is too new, or is
    older and not to be upgraded here (``upgrade``: ``store.migrations.ensure_schema``).
    ``threads``: how many threads of this process use it (its PostgreSQL pool's size).
    """
    parsed = parse_url(url)
    engine = build_engine(parsed, busy_timeout_ms=busy_timeout_ms, threads=threads)
    try:
        with (
            store_errors("cannot open the state store", show_reason=True),
            engine.connect() as conn,
        ):
            conn.execution_options(**{WRITE_LOCK_OPTION: True})
            with conn.begin():
                migrations.ensure_schema(conn, upgrade=upgrade)
    except BaseException:
        engine.dispose()
        raise
    log.info("state store open at %s (schema version %d)", safe_url(parsed),
             migrations.LATEST)
    return SqlStore(engine, busy_timeout_ms)


def store_status(url: str) -> migrations.SchemaStatus:
    """The schema version the store at ``url`` holds, without changing anything."""
    engine = build_engine(parse_url(url))
    try:
        with (
            store_errors("cannot open the state store", show_reason=True),
            engine.connect() as conn,
        ):
            found = migrations.status(conn)
            conn.rollback()
        return found
    finally:
        engine.dispose()


class SqlUnitOfWork(UnitOfWork):
    """One transaction; leaving without commit() rolls back. Not shared between threads."""

    def __init__(
        self, engine: Engine, sqlite: bool = False, states: DecodedStates | None = None,
        turns: WriterTurns | None = None, kept: KeptConnections | None = None,
        sync: WalSync | None = None,
    ) -> None:
        self._engine = engine
        self._sync = sync
        self._writes = False
        self._kept = kept
        self.sqlite = sqlite
        self.states = DecodedStates() if states is None else states
        self._turns = turns
        self._has_turn = False
        self._conn: Connection | None = None
        self._closed = False
        self.domains = _Domains(self)
        self.machines = SqlMachines(self)
        self.audit = SqlAudit(self)
        self.records = SqlRecords(self)
        self.hosts = SqlHosts(self)
        self.routing = SqlRouting(self)
        self.credentials = SqlCredentials(self)
        self.host_grants = SqlHostGrants(self)
        self.firmware_trust = SqlFirmwareTrust(self)
        self.firmware = SqlFirmware(self)
        self.thermal = SqlThermal(self)
        self.refusals = SqlRefusals(self)
        self.sel = SqlSel(self)
        self.timers = SqlTimers(self)
        self.events = SqlEvents(self)

    def __enter__(self) -> SqlUnitOfWork:
        return self

    def begin_writing(self) -> None:
        self.connection(write=True)

    def connection(self, *, write: bool) -> Connection:
        """The transaction's connection, begun (write-locked if ``write``) on first use.

        A reading unit on SQLite begins on the driver itself: SQLAlchemy's transaction
        (events, execution options, the rollback at its end) costs more than the read.
        A statement run through SQLAlchemy within it joins that transaction (the begin
        listener sees it begun), and ``commit`` or ``rollback`` ends both."""
        if self._closed:
            raise RuntimeError("this unit of work is finished; start a new one")
        if write or not self.sqlite:  # a local read never waits (WAL: writers do not block it)
            may_block("a write to the store" if write else "a store over the network")
        if write and self.sqlite and self._conn is not None and not self._writes:
            _warn_read_then_write()
        self._writes = self._writes or write
        if self._conn is None:
            if write and self._turns is not None:
                self._has_turn = self._turns.take()
            try:
                with store_errors():
                    kept = None if self._kept is None else self._kept.take()
                    conn = self._engine.connect() if kept is None else kept
                    try:
                        if self.sqlite and not write:
                            driver_connection(conn).execute("BEGIN").close()
                        else:  # a writing unit begins with the write lock (see engine.py)
                            conn.execution_options(**{WRITE_LOCK_OPTION: write})
                            conn.begin()
                    except BaseException:
                        self._release(conn, clean=False)
                        raise
            except BaseException:
                self._end_turn()
                raise
            self._conn = conn
        return self._conn

    @staticmethod
    def _end_transaction(conn: Connection, *, commit: bool) -> None:
        """Commit or roll back SQLAlchemy's transaction (which ends the driver's), or, for a
        reading unit begun on the driver, the driver's own."""
        if conn.in_transaction():
            (conn.commit if commit else conn.rollback)()
            return
        driver = None if conn.closed else conn.connection.driver_connection
        if driver is not None and getattr(driver, "in_transaction", False):  # sqlite3's
            (driver.commit if commit else driver.rollback)()

    def _release(self, conn: Connection, *, clean: bool) -> None:
        """Keep ``conn`` for this thread's next unit, or close it."""
        try:
            if self._kept is None or not self._kept.keep(conn, clean=clean):
                conn.close()
        finally:
            self._end_turn()

    def _end_turn(self) -> None:
        if self._has_turn and self._turns is not None:
            self._has_turn = False
            self._turns.give_back()

    def commit(self) -> None:
        if self._closed:
            raise RuntimeError("this unit of work is already finished")
        conn, self._conn = self._conn, None
        self._closed = True
        if conn is None:
            return
        committed = False
        sync = self._sync if self._writes else None
        ticket = 0
        try:
            with store_errors():
                self._end_transaction(conn, commit=True)
            committed = True
            if sync is not None:
                ticket = sync.committed()
        finally:
            self._release(conn, clean=committed)
        if sync is not None and ticket:  # on the disk before it is reported; meanwhile
            sync.wait_durable(ticket)    # the next writer has its turn

    def rollback(self) -> None:
        conn, self._conn = self._conn, None
        self._closed = True
        if conn is None:
            return
        clean = False
        try:
            self._end_transaction(conn, commit=False)
            clean = True
        except Exception as exc:  # nothing was committed; the connection is discarded
            log.warning("rollback failed: %s", type(exc).__name__)
        finally:
            self._release(conn, clean=clean)


class _Domains(DomainRepository):
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    def get(self, domain_id: str, *, for_update: bool = False) -> DomainState:
        uow = self._uow
        conn = uow.connection(write=for_update)
        query = _GET_DOMAIN_FOR_UPDATE if for_update else _GET_DOMAIN
        with store_errors():
            rows = query.rows(conn, uow.sqlite, {"domain_id": domain_id})
        row = rows[0] if rows else None
        if row is None:
            raise DomainNotFound(f"no domain {domain_id!r}")
        version, text = row
        return uow.states.decode(domain_id, int(version), text)

    def add(self, state: DomainState, created_at: datetime) -> None:
        conn = self._uow.connection(write=True)
        values = {
            "domain_id": state.domain_id,
            "version": state.version,
            "created_at": time_to_text(created_at),
            "state": encode_state(state),
        }
        with store_errors():
            exists = conn.scalar(
                select(schema.domains.c.domain_id).where(
                    schema.domains.c.domain_id == state.domain_id
                )
            )
            if exists is None:
                try:
                    conn.execute(insert(schema.domains).values(**values))
                except IntegrityError:  # a concurrent add on a non-locking database
                    exists = state.domain_id
        if exists is not None:
            raise DomainExists(f"domain {state.domain_id!r} exists")

    def save(self, state: DomainState, expected_version: int) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            saved = _SAVE_DOMAIN.run(conn, self._uow.sqlite, {
                "key_id": state.domain_id, "expected_version": expected_version,
                "new_version": state.version, "new_state": encode_state(state),
            })
            if saved == 1:
                return
            current = conn.scalar(_DOMAIN_VERSION, {"domain_id": state.domain_id})
        if current is None:
            raise DomainNotFound(f"no domain {state.domain_id!r}")
        raise VersionConflict(
            f"domain {state.domain_id} is at version {current}, not {expected_version}"
        )

    def delete(self, domain_id: str) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            result = conn.execute(
                delete(schema.domains).where(schema.domains.c.domain_id == domain_id)
            )
        if result.rowcount == 0:
            raise DomainNotFound(f"no domain {domain_id!r}")

    def list(self) -> list[DomainSummary]:
        conn = self._uow.connection(write=False)
        table = schema.domains
        with store_errors():
            rows = conn.execute(
                select(table.c.domain_id, table.c.version, table.c.created_at)
                .order_by(table.c.domain_id)
            ).all()
        return [
            DomainSummary(r.domain_id, int(r.version), time_from_text(r.created_at))
            for r in rows
        ]
