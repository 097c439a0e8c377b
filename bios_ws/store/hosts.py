"""The hosts table (``domain.hosts``), the machines' host column it claims, and the host
grants (which domains a host holding a host certificate may speak for)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update

from bios_ws.domain.credentials import HostGrant
from bios_ws.domain.hosts import HostEntry, HostRegistry
from bios_ws.domain.ports import HostGrantRepository
from bios_ws.errors import AdminError, StoreUnavailable
from bios_ws.store import schema
from bios_ws.store.codec import time_from_text, time_to_text
from bios_ws.store.engine import store_errors

if TYPE_CHECKING:
    from bios_ws.store.sql import SqlUnitOfWork

_hosts = schema.hosts
_machines = schema.machines
_grants = schema.host_grants


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


class SqlHostGrants(HostGrantRepository):
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    def granted(self, host: str, domain_id: str) -> bool:
        conn = self._uow.connection(write=False)
        with store_errors():
            found = conn.scalar(select(_grants.c.host).where(_grants.c.host == host)
                                .where(_grants.c.domain_id == domain_id))
        return found is not None

    def list(self, host: str | None = None) -> list[HostGrant]:
        conn = self._uow.connection(write=False)
        query = select(_grants).order_by(_grants.c.host, _grants.c.domain_id)
        if host is not None:
            query = query.where(_grants.c.host == host)
        with store_errors():
            rows = conn.execute(query).all()
        return [_grant(row) for row in rows]

    def replace(self, host: str, domain_ids: Iterable[str], at: datetime) -> None:
        wanted = set(domain_ids)
        conn = self._uow.connection(write=True)
        with store_errors():
            held = set(conn.scalars(select(_grants.c.domain_id).where(_grants.c.host == host)))
            gone = held - wanted
            if gone:
                conn.execute(delete(_grants).where(_grants.c.host == host)
                             .where(_grants.c.domain_id.in_(sorted(gone))))
            new = sorted(wanted - held)
            if new:
                conn.execute(insert(_grants), [
                    {"host": host, "domain_id": domain_id, "granted_at": time_to_text(at)}
                    for domain_id in new])

    def remove_host(self, host: str) -> int:
        conn = self._uow.connection(write=True)
        with store_errors():
            result = conn.execute(delete(_grants).where(_grants.c.host == host))
        return int(result.rowcount)

    def remove_domain(self, domain_id: str) -> int:
        conn = self._uow.connection(write=True)
        with store_errors():
            result = conn.execute(delete(_grants).where(_grants.c.domain_id == domain_id))
        return int(result.rowcount)


def _grant(row: Any) -> HostGrant:
    try:
        return HostGrant(str(row.host), str(row.domain_id), time_from_text(row.granted_at))
    except ValueError:
        raise StoreUnavailable(f"the host grant {row.host!r} -> {row.domain_id!r} is damaged")\
            from None
