"""The hosts table (``domain.hosts``), and the machines' host column it claims."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select, update

from bios_ws.domain.hosts import HostEntry, HostRegistry
from bios_ws.errors import AdminError, StoreUnavailable
from bios_ws.store import schema
from bios_ws.store.codec import time_from_text, time_to_text
from bios_ws.store.engine import store_errors

if TYPE_CHECKING:
    from bios_ws.store.sql import SqlUnitOfWork

_hosts = schema.hosts
_machines = schema.machines


class SqlHosts(HostRegistry):
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    def get(self, name: str) -> HostEntry | None:
        conn = self._uow.connection(write=False)
        with store_errors():
            row = conn.execute(select(_hosts).where(_hosts.c.name == name)).one_or_none()
        return None if row is None else _entry(row)

    def list(self) -> list[HostEntry]:
        conn = self._uow.connection(write=False)
        with store_errors():
            rows = conn.execute(select(_hosts).order_by(_hosts.c.name)).all()
        return [_entry(row) for row in rows]

    def add(self, entry: HostEntry) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            conn.execute(insert(_hosts).values(
                name=entry.name, ca_fingerprint=entry.ca_fingerprint, tpm=entry.tpm,
                registered_at=time_to_text(entry.registered_at),
                started_at=None if entry.started_at is None else time_to_text(entry.started_at)))

    def started(self, name: str, at: datetime) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            conn.execute(update(_hosts).where(_hosts.c.name == name)
                         .values(started_at=time_to_text(at)))

    def claim_unassigned(self, name: str) -> int:
        conn = self._uow.connection(write=True)
        with store_errors():
            result = conn.execute(update(_machines).where(_machines.c.host.is_(None))
                                  .values(host=name, version=_machines.c.version + 1))
        return int(result.rowcount)


def _entry(row: Any) -> HostEntry:
    try:
        return HostEntry(str(row.name), str(row.ca_fingerprint), str(row.tpm),
                         time_from_text(row.registered_at),
                         None if row.started_at is None else time_from_text(row.started_at))
    except (AdminError, ValueError):
        raise StoreUnavailable(f"the host record {row.name!r} is damaged") from None
