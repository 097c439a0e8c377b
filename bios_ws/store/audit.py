"""The audit tables: the hash-chained log, each entry's scope, and the refusal windows.

``audit`` is append-only (triggers refuse UPDATE and DELETE). ``audit_scope`` says
which guest may see each entry and is indexed by it, so a guest's last entries are
found however many others were written. ``audit_refusals`` holds the open windows of
the refusal limit (``domain.audit_limit``); it is read and written under the same
lock as appends, so every worker counts the same refusals.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from bios_ws.domain.audit import (
    GENESIS_HASH,
    HOST_WIDE,
    AuditEntry,
    AuditRecord,
    SeenEntry,
    scope_of,
)
from bios_ws.domain.audit_limit import RefusalWindow
from bios_ws.domain.ports import AuditLog, RefusalCounts
from bios_ws.store import schema
from bios_ws.store.codec import time_from_text, time_to_text, to_utc
from bios_ws.store.engine import store_errors
from bios_ws.store.prepared import Prepared

if TYPE_CHECKING:
    from bios_ws.store.sql import SqlUnitOfWork

_AUDIT_PAGE = 500
_audit = schema.audit
_scope = schema.audit_scope
#: The scope of the entries of a deleted domain: no guest sees them (no domain id starts
#: with "~").
RETIRED = "~"
_windows = schema.audit_refusals
#: The append's statements (``Prepared``: an append runs on every state change).
_LAST_ENTRY = Prepared(
    select(_audit.c.seq, _audit.c.entry_hash).order_by(_audit.c.seq.desc()).limit(1))
_INSERT_ENTRY = Prepared(insert(_audit).values({c.name: bindparam(c.name) for c in _audit.c}))
_INSERT_SCOPE = Prepared(insert(_scope).values(seq=bindparam("seq"), scope=bindparam("scope")))


def _lock_audit(conn: Connection, sqlite_driver: bool) -> None:
    """Serializes appenders (and refusal counters) on PostgreSQL; nothing on SQLite,
    whose writing units already hold the database's write lock."""
    if sqlite_driver:
        return
    conn.execute(
        select(schema.meta.c.key)
        .where(schema.meta.c.key == schema.AUDIT_LOCK_KEY)
        .with_for_update()
    ).all()


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(**{**row._mapping, "seq": int(row.seq), "time": time_from_text(row.time)})


class SqlAudit(AuditLog):
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    def append(self, record: AuditRecord) -> AuditEntry:
        uow = self._uow
        conn = uow.connection(write=True)
        record = dataclasses.replace(record, time=to_utc(record.time))
        with store_errors():
            _lock_audit(conn, uow.sqlite)
            last = _LAST_ENTRY.rows(conn, uow.sqlite, {})
            seq, prev_hash = (int(last[0][0]) + 1, str(last[0][1])) if last else (1, GENESIS_HASH)
            entry = AuditEntry.chain(record, seq, prev_hash)
            # the audit table's columns are the entry's fields, by name
            row = {f.name: getattr(entry, f.name) for f in dataclasses.fields(entry)}
            row["time"] = time_to_text(entry.time)
            _INSERT_ENTRY.run(conn, uow.sqlite, row)
            _INSERT_SCOPE.run(conn, uow.sqlite, {
                "seq": seq, "scope": scope_of(record.principal, record.domain_id)})
        return entry

    def entries(self, *, since_seq: int = 1) -> Iterator[AuditEntry]:
        conn = self._uow.connection(write=False)
        next_seq = since_seq
        while True:
            with store_errors():
                rows = conn.execute(
                    select(_audit)
                    .where(_audit.c.seq >= next_seq)
                    .order_by(_audit.c.seq)
                    .limit(_AUDIT_PAGE)
                ).all()
            for row in rows:
                yield _entry(row)
            if len(rows) < _AUDIT_PAGE:
                return
            next_seq = int(rows[-1].seq) + 1

    def recent(self, limit: int) -> list[AuditEntry]:
        if limit <= 0:
            return []
        conn = self._uow.connection(write=False)
        with store_errors():
            rows = conn.execute(
                select(_audit).order_by(_audit.c.seq.desc()).limit(limit)).all()
        return [_entry(row) for row in reversed(rows)]

    def seen_by(self, domain_id: str, limit: int) -> list[SeenEntry]:
        if limit <= 0:
            return []
        conn = self._uow.connection(write=False)
        scopes = (domain_id, HOST_WIDE)
        with store_errors():
            rows = [row for scope in scopes for row in conn.execute(
                select(_audit).join(_scope, _scope.c.seq == _audit.c.seq)
                .where(_scope.c.scope == scope)
                .order_by(_scope.c.seq.desc()).limit(limit)
            ).all()]
            rows = sorted(rows, key=lambda row: int(row.seq))[-limit:]
            if not rows:
                return []
            before = conn.scalar(
                select(func.count()).select_from(_scope)
                .where(_scope.c.scope.in_(scopes), _scope.c.seq < rows[0].seq))
        return [SeenEntry(int(before or 0) + n, _entry(row)) for n, row in enumerate(rows, 1)]


    def retire_scope(self, domain_id: str) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            conn.execute(update(_scope).where(_scope.c.scope == domain_id)
                         .values(scope=RETIRED))


class SqlRefusals(RefusalCounts):
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    def windows(self, *, for_update: bool = False) -> list[RefusalWindow]:
        conn = self._uow.connection(write=for_update)
        with store_errors():
            if for_update:
                _lock_audit(conn, self._uow.sqlite)
            rows = conn.execute(select(_windows).order_by(_windows.c.principal)).all()
        return [_window(row) for row in rows]

    def put(self, window: RefusalWindow) -> None:
        conn = self._uow.connection(write=True)
        row = _row(window)
        with store_errors():
            result = conn.execute(
                update(_windows).where(_windows.c.principal == window.principal).values(**row))
            if result.rowcount == 0:
                conn.execute(insert(_windows).values(principal=window.principal, **row))

    def remove(self, principal: str) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            conn.execute(delete(_windows).where(_windows.c.principal == principal))


def _row(window: RefusalWindow) -> dict[str, Any]:
    return {
        "started": time_to_text(window.started),
        "written": window.written,
        "counted": window.counted,
        "first_counted": None if window.first_counted is None
        else time_to_text(window.first_counted),
        "last_counted": None if window.last_counted is None
        else time_to_text(window.last_counted),
    }


def _window(row: Any) -> RefusalWindow:
    return RefusalWindow(
        principal=str(row.principal),
        started=time_from_text(row.started),
        written=int(row.written),
        counted=int(row.counted),
        first_counted=None if row.first_counted is None else time_from_text(row.first_counted),
        last_counted=None if row.last_counted is None else time_from_text(row.last_counted),
    )
