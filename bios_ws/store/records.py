"""The host's own records (key, version, value): integrity verdicts, the reference
measurements, the registry in force."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, insert, select, update

from bios_ws.domain.ports import HostRecord, HostRecords
from bios_ws.store import schema
from bios_ws.store.codec import time_from_text, time_to_text
from bios_ws.store.engine import store_errors
from bios_ws.store.prepared import Prepared

if TYPE_CHECKING:
    from bios_ws.store.sql import SqlUnitOfWork

_records = schema.host_records
_RECORD_VERSION = Prepared(select(_records.c.version).where(_records.c.key == bindparam("key")))


class SqlRecords(HostRecords):
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    def get(self, key: str, *, for_update: bool = False) -> HostRecord | None:
        conn = self._uow.connection(write=for_update)
        table = schema.host_records
        query = select(table).where(table.c.key == key)
        with store_errors():
            row = conn.execute(query.with_for_update() if for_update else query).one_or_none()
        if row is None:
            return None
        return HostRecord(row.key, int(row.version), row.value, time_from_text(row.updated_at))

    def hold_shared(self, key: str) -> None:
        conn = self._uow.connection(write=True)
        if self._uow.sqlite:  # the write lock is the whole database's
            return
        table = schema.host_records
        with store_errors():
            conn.execute(select(table.c.key).where(table.c.key == key)
                         .with_for_update(read=True)).all()

    def version(self, key: str) -> int | None:
        uow = self._uow
        conn = uow.connection(write=False)
        with store_errors():
            rows = _RECORD_VERSION.rows(conn, uow.sqlite, {"key": key})
        return int(rows[0][0]) if rows else None

    def put(self, key: str, value: str, updated_at: datetime) -> HostRecord:
        old = self.get(key, for_update=True)
        table = schema.host_records
        record = HostRecord(key, old.version + 1 if old else 1, value, updated_at)
        row = {"key": key, "version": record.version, "value": value,
               "updated_at": time_to_text(updated_at)}
        with store_errors():
            conn = self._uow.connection(write=True)
            if old is None:
                conn.execute(insert(table).values(**row))
            else:
                conn.execute(update(table).where(table.c.key == key).values(**row))
        return record
