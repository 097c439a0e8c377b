"""The thermal_state table: each domain's thermal record, changed by compare-and-set.

Temperatures, CPU seconds and thresholds are IEEE doubles (SQLite REAL, PostgreSQL
DOUBLE PRECISION): they read back exactly. The overrides are a small JSON list.
"""

from __future__ import annotations

import builtins
import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, and_, delete, insert, not_, select, update
from sqlalchemy.exc import IntegrityError

from bios_ws.domain.ports import ThermalRepository
from bios_ws.domain.thermal_policy import (
    Sensor,
    SensorOverride,
    ThermalLevel,
    ThermalRecord,
    Thresholds,
)
from bios_ws.errors import StoreUnavailable
from bios_ws.store import schema_runtime
from bios_ws.store.codec import time_from_text, time_to_text
from bios_ws.store.engine import store_errors

if TYPE_CHECKING:
    from bios_ws.store.sql import SqlUnitOfWork

_table = schema_runtime.thermal_state
#: The overrides column of a record without any (``_row``).
_NO_OVERRIDES = "[]"


class SqlThermal(ThermalRepository):
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    def get(self, domain_id: str) -> ThermalRecord | None:
        conn = self._uow.connection(write=False)
        with store_errors():
            row = conn.execute(select(_table).where(_table.c.domain_id == domain_id)
                               ).one_or_none()
        return None if row is None else _record(row)

    def add(self, record: ThermalRecord) -> bool:
        """The insert runs in a savepoint: a record added meanwhile by another process
        fails it alone, not the unit (as ``SqlFirmware.use_transfer_key``)."""
        conn = self._uow.connection(write=True)
        with store_errors():
            try:
                with conn.begin_nested():
                    conn.execute(insert(_table).values(**_row(record)))
            except IntegrityError:
                return False
        return True

    def save(self, record: ThermalRecord, expected_version: int) -> bool:
        conn = self._uow.connection(write=True)
        with store_errors():
            result = conn.execute(update(_table)
                                  .where(_table.c.domain_id == record.domain_id)
                                  .where(_table.c.version == expected_version)
                                  .values(**_row(record)))
        return bool(result.rowcount == 1)

    def delete(self, domain_id: str) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            conn.execute(delete(_table).where(_table.c.domain_id == domain_id))

    def list(self) -> list[ThermalRecord]:
        return self._select(select(_table))

    def unsettled(self, ambient: float, within: float) -> builtins.list[ThermalRecord]:
        settled = and_(_table.c.level == ThermalLevel.NORMAL.label,
                       _table.c.overrides == _NO_OVERRIDES,
                       _table.c.temperature.between(ambient - within, ambient + within))
        return self._select(select(_table).where(not_(settled)))

    def _select(self, query: Select[Any]) -> builtins.list[ThermalRecord]:
        conn = self._uow.connection(write=False)
        with store_errors():
            rows = conn.execute(query.order_by(_table.c.domain_id)).all()
        return [_record(row) for row in rows]


def _row(record: ThermalRecord) -> dict[str, Any]:
    thresholds = record.thresholds
    return {
        "domain_id": record.domain_id, "version": record.version,
        "temperature": record.temperature, "updated_at": time_to_text(record.updated_at),
        "cpu_seconds": record.cpu_seconds, "load": record.load,
        "level": record.level.label, "caution": thresholds.caution,
        "critical": thresholds.critical, "fatal": thresholds.fatal,
        "hysteresis": thresholds.hysteresis,
        "overrides": json.dumps([
            {"sensor": o.sensor.value, "value": o.value,
             "expires_at": time_to_text(o.expires_at), "set_by": o.set_by}
            for o in record.overrides], separators=(",", ":")),
    }


def _record(row: Any) -> ThermalRecord:
    try:
        overrides = tuple(
            SensorOverride(Sensor(item["sensor"]), float(item["value"]),
                           time_from_text(item["expires_at"]), str(item["set_by"]))
            for item in json.loads(row.overrides))
        return ThermalRecord(
            domain_id=row.domain_id, temperature=float(row.temperature),
            updated_at=time_from_text(row.updated_at), version=int(row.version),
            cpu_seconds=None if row.cpu_seconds is None else float(row.cpu_seconds),
            load=float(row.load), level=ThermalLevel.of_label(row.level),
            thresholds=Thresholds(float(row.caution), float(row.critical), float(row.fatal),
                                  float(row.hysteresis)),
            overrides=overrides)
    except (KeyError, TypeError, ValueError):
        raise StoreUnavailable(f"the thermal record of {row.domain_id!r} is damaged"
                               ) from None
