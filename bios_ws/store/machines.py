"""The machines table: each domain's machine record (kind and power), own version."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update

from bios_ws.domain.firmware import SecureBootCurrent
from bios_ws.domain.ports import MachineRepository
from bios_ws.domain.power import MachineKind, MachineRecord, PowerState, ResetCause
from bios_ws.errors import DomainExists, DomainNotFound, StoreUnavailable, VersionConflict
from bios_ws.store import schema
from bios_ws.store.codec import time_from_text, time_to_text
from bios_ws.store.engine import store_errors

if TYPE_CHECKING:
    from bios_ws.store.sql import SqlUnitOfWork

_table = schema.machines


class SqlMachines(MachineRepository):
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    def get(self, domain_id: str, *, for_update: bool = False) -> MachineRecord:
        conn = self._uow.connection(write=for_update)
        query = select(_table).where(_table.c.domain_id == domain_id)
        with store_errors():
            row = conn.execute(query.with_for_update() if for_update else query).one_or_none()
        if row is None:
            raise DomainNotFound(f"no domain {domain_id!r}")
        return _record(row)

    def add(self, record: MachineRecord) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            exists = conn.scalar(select(_table.c.domain_id)
                                 .where(_table.c.domain_id == record.domain_id))
            if exists is None:
                conn.execute(insert(_table).values(**_row(record)))
        if exists is not None:
            raise DomainExists(f"domain {record.domain_id!r} has a machine")

    def save(self, record: MachineRecord, expected_version: int) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            result = conn.execute(
                update(_table)
                .where(_table.c.domain_id == record.domain_id)
                .where(_table.c.version == expected_version)
                .values(**_row(record)))
            if result.rowcount == 1:
                return
            current = conn.scalar(select(_table.c.version)
                                  .where(_table.c.domain_id == record.domain_id))
        if current is None:
            raise DomainNotFound(f"no domain {record.domain_id!r}")
        raise VersionConflict(f"the machine of {record.domain_id} is at version {current},"
                              f" not {expected_version}")

    def delete(self, domain_id: str) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            conn.execute(delete(_table).where(_table.c.domain_id == domain_id))

    def list(self) -> list[MachineRecord]:
        conn = self._uow.connection(write=False)
        with store_errors():
            rows = conn.execute(select(_table).order_by(_table.c.domain_id)).all()
        return [_record(row) for row in rows]

    def powered(self) -> builtins.list[MachineRecord]:
        conn = self._uow.connection(write=False)
        with store_errors():
            rows = conn.execute(select(_table).where(_table.c.power_state != PowerState.OFF.value)
                                .order_by(_table.c.domain_id)).all()
        return [_record(row) for row in rows]


def _row(record: MachineRecord) -> dict[str, Any]:
    return {
        "domain_id": record.domain_id,
        "kind": record.kind.value,
        "version": record.version,
        "power_state": record.state.value,
        "last_reset_cause": None if record.last_reset_cause is None
        else record.last_reset_cause.value,
        "last_reset_time": None if record.last_reset_time is None
        else time_to_text(record.last_reset_time),
        "delivered_boot_next": record.delivered_boot_next,
        "secure_boot_current": record.secure_boot_current.value,
        "host": record.host,
    }


def _record(row: Any) -> MachineRecord:
    try:
        return MachineRecord(
            domain_id=str(row.domain_id),
            kind=MachineKind(row.kind),
            state=PowerState(row.power_state),
            last_reset_cause=None if row.last_reset_cause is None
            else ResetCause(row.last_reset_cause),
            last_reset_time=None if row.last_reset_time is None
            else time_from_text(row.last_reset_time),
            version=int(row.version),
            delivered_boot_next=None if row.delivered_boot_next is None
            else str(row.delivered_boot_next),
            secure_boot_current=SecureBootCurrent(row.secure_boot_current),
            host=None if row.host is None else str(row.host),
        )
    except ValueError:
        raise StoreUnavailable(f"the machine record of {row.domain_id!r} is damaged") from None
