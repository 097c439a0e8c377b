"""The system-management tables: each domain's System Event Log (``sel_logs``,
``sel_entries``), its wake alarm (``wake_alarms``) and its watchdog (``watchdogs``).

An append locks the log's header row (``FOR UPDATE``; SQLite's writers take turns
anyway) and follows ``bios_ws.domain.sel.plan_append``; a domain without a header row
has the default policy. Alarms and watchdogs are replaced by compare-and-set on their
version: the first worker to claim one is the only one that fires it.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update

from bios_ws.domain.ports import SelRepository, TimerRepository
from bios_ws.domain.sel import (
    OverWritePolicy,
    SelEntry,
    SelLog,
    SelPolicy,
    SelRecord,
    Severity,
    plan_append,
    trim_to,
)
from bios_ws.domain.timers import WakeAlarm, Watchdog
from bios_ws.errors import InvalidRequest, StoreUnavailable
from bios_ws.store import schema_system as tables
from bios_ws.store.codec import time_from_text, time_to_text
from bios_ws.store.engine import store_errors

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from bios_ws.store.sql import SqlUnitOfWork

_logs = tables.sel_logs
_entries = tables.sel_entries
_alarms = tables.wake_alarms
_watchdogs = tables.watchdogs


class SqlSel(SelRepository):
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    def append(self, domain_id: str, record: SelRecord) -> SelEntry | None:
        conn = self._uow.connection(write=True)
        with store_errors():
            log, stored = self._header(conn, domain_id, for_update=True)
            plan = plan_append(log.policy, log.entries)
            if not plan.accept:
                self._put(conn, SelLog(domain_id, log.policy, log.entries, log.last_id,
                                       log.dropped + 1), stored)
                return None
            self._drop_oldest(conn, domain_id, plan.evict)
            entry = SelEntry.of(domain_id, log.last_id + 1, record)
            conn.execute(insert(_entries).values(**_entry_row(entry)))
            self._put(conn, SelLog(domain_id, log.policy, 0, entry.entry_id, log.dropped),
                      stored)
        return entry

    def log(self, domain_id: str) -> SelLog:
        conn = self._uow.connection(write=False)
        with store_errors():
            return self._header(conn, domain_id)[0]

    def entries(self, domain_id: str) -> list[SelEntry]:
        conn = self._uow.connection(write=False)
        with store_errors():
            rows = conn.execute(select(_entries).where(_entries.c.domain_id == domain_id)
                                .order_by(_entries.c.entry_id)).all()
        return [_entry(row) for row in rows]

    def clear(self, domain_id: str) -> int:
        conn = self._uow.connection(write=True)
        with store_errors():
            self._header(conn, domain_id, for_update=True)
            result = conn.execute(delete(_entries).where(_entries.c.domain_id == domain_id))
        return int(result.rowcount)

    def set_policy(self, domain_id: str, policy: SelPolicy) -> int:
        conn = self._uow.connection(write=True)
        with store_errors():
            log, stored = self._header(conn, domain_id, for_update=True)
            gone = trim_to(policy, log.entries)
            self._drop_oldest(conn, domain_id, gone)
            self._put(conn, SelLog(domain_id, policy, 0, log.last_id, log.dropped), stored)
        return gone

    def forget_domain(self, domain_id: str) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            for table in (_entries, _logs):
                conn.execute(delete(table).where(table.c.domain_id == domain_id))

    def _header(self, conn: Connection, domain_id: str, *, for_update: bool = False
                ) -> tuple[SelLog, bool]:
        """The log (its entries counted) and whether it has a header row."""
        query = select(_logs).where(_logs.c.domain_id == domain_id)
        row = conn.execute(query.with_for_update() if for_update else query).one_or_none()
        held = int(conn.scalar(select(func.count()).select_from(_entries)
                               .where(_entries.c.domain_id == domain_id)) or 0)
        if row is None:
            return SelLog(domain_id, SelPolicy(), held), False
        try:
            policy = SelPolicy(int(row.max_entries), OverWritePolicy(row.overwrite_policy))
        except (ValueError, InvalidRequest):
            raise _damaged(f"the event log header of {domain_id!r}") from None
        return SelLog(domain_id, policy, held, int(row.last_id), int(row.dropped)), True

    @staticmethod
    def _put(conn: Connection, log: SelLog, stored: bool) -> None:
        values = {"max_entries": log.policy.max_entries,
                  "overwrite_policy": log.policy.overwrite.value, "last_id": log.last_id,
                  "dropped": log.dropped}
        if stored:
            conn.execute(update(_logs).where(_logs.c.domain_id == log.domain_id)
                         .values(**values))
        else:
            conn.execute(insert(_logs).values(domain_id=log.domain_id, **values))

    @staticmethod
    def _drop_oldest(conn: Connection, domain_id: str, count: int) -> None:
        """Remove the ``count`` oldest entries (the lowest Ids)."""
        if count <= 0:
            return
        last = conn.scalar(select(_entries.c.entry_id).where(_entries.c.domain_id == domain_id)
                           .order_by(_entries.c.entry_id).limit(1).offset(count - 1))
        if last is not None:
            conn.execute(delete(_entries).where(_entries.c.domain_id == domain_id,
                                                _entries.c.entry_id <= last))


class SqlTimers(TimerRepository):
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    def alarm(self, domain_id: str, *, for_update: bool = False) -> WakeAlarm | None:
        conn = self._uow.connection(write=for_update)
        query = select(_alarms).where(_alarms.c.domain_id == domain_id)
        with store_errors():
            row = conn.execute(query.with_for_update() if for_update else query
                               ).one_or_none()
        return None if row is None else _alarm(row)

    def put_alarm(self, alarm: WakeAlarm) -> WakeAlarm:
        conn = self._uow.connection(write=True)
        with store_errors():
            version = conn.scalar(select(_alarms.c.version).with_for_update()
                                  .where(_alarms.c.domain_id == alarm.domain_id))
            stored = WakeAlarm(alarm.domain_id, alarm.wake_at, alarm.set_by, alarm.set_at,
                               1 if version is None else int(version) + 1)
            if version is None:
                conn.execute(insert(_alarms).values(**_alarm_row(stored)))
            else:
                conn.execute(update(_alarms).where(_alarms.c.domain_id == alarm.domain_id)
                             .values(**_alarm_row(stored)))
        return stored

    def remove_alarm(self, domain_id: str, expected_version: int | None = None) -> bool:
        conn = self._uow.connection(write=True)
        query = delete(_alarms).where(_alarms.c.domain_id == domain_id)
        if expected_version is not None:
            query = query.where(_alarms.c.version == expected_version)
        with store_errors():
            return bool(conn.execute(query).rowcount == 1)

    def due_alarms(self, now: datetime) -> list[WakeAlarm]:
        conn = self._uow.connection(write=False)
        with store_errors():
            rows = conn.execute(select(_alarms).where(_alarms.c.wake_at <= time_to_text(now))
                                .order_by(_alarms.c.wake_at, _alarms.c.domain_id)).all()
        return [_alarm(row) for row in rows]

    def watchdog(self, domain_id: str, *, for_update: bool = False) -> Watchdog | None:
        conn = self._uow.connection(write=for_update)
        query = select(_watchdogs).where(_watchdogs.c.domain_id == domain_id)
        with store_errors():
            row = conn.execute(query.with_for_update() if for_update else query
                               ).one_or_none()
        return None if row is None else _watchdog(row)

    def save_watchdog(self, watchdog: Watchdog, expected_version: int | None) -> bool:
        conn = self._uow.connection(write=True)
        row = _watchdog_row(watchdog)
        with store_errors():
            if expected_version is None:
                taken = conn.scalar(select(_watchdogs.c.version)
                                    .where(_watchdogs.c.domain_id == watchdog.domain_id))
                if taken is not None:
                    return False
                conn.execute(insert(_watchdogs).values(**row))
                return True
            result = conn.execute(update(_watchdogs)
                                  .where(_watchdogs.c.domain_id == watchdog.domain_id)
                                  .where(_watchdogs.c.version == expected_version)
                                  .values(**row))
        return bool(result.rowcount == 1)

    def armed_watchdogs(self) -> list[Watchdog]:
        conn = self._uow.connection(write=False)
        with store_errors():
            rows = conn.execute(select(_watchdogs).where(_watchdogs.c.enabled == 1)
                                .order_by(_watchdogs.c.domain_id)).all()
        return [_watchdog(row) for row in rows]

    def forget_domain(self, domain_id: str) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            for table in (_alarms, _watchdogs):
                conn.execute(delete(table).where(table.c.domain_id == domain_id))


def _entry_row(entry: SelEntry) -> dict[str, Any]:
    return {"domain_id": entry.domain_id, "entry_id": entry.entry_id,
            "created": time_to_text(entry.created), "severity": entry.severity.value,
            "message_id": entry.message_id, "message": entry.message,
            "message_args": json.dumps(list(entry.message_args)),
            "sensor_type": entry.sensor_type, "entry_code": entry.entry_code}


def _entry(row: Any) -> SelEntry:
    try:
        args = json.loads(row.message_args)
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise ValueError("not a list of strings")
        return SelEntry(str(row.domain_id), int(row.entry_id), time_from_text(row.created),
                        Severity(row.severity), str(row.message_id), str(row.message),
                        tuple(args), str(row.sensor_type), str(row.entry_code))
    except ValueError:
        raise _damaged(f"event log entry {row.entry_id} of {row.domain_id!r}") from None


def _alarm_row(alarm: WakeAlarm) -> dict[str, Any]:
    return {"domain_id": alarm.domain_id, "wake_at": time_to_text(alarm.wake_at),
            "set_by": alarm.set_by, "set_at": time_to_text(alarm.set_at),
            "version": alarm.version}


def _alarm(row: Any) -> WakeAlarm:
    return WakeAlarm(str(row.domain_id), time_from_text(row.wake_at), str(row.set_by),
                     time_from_text(row.set_at), int(row.version))


def _watchdog_row(watchdog: Watchdog) -> dict[str, Any]:
    return {"domain_id": watchdog.domain_id, "enabled": 1 if watchdog.enabled else 0,
            "timeout_seconds": watchdog.timeout_seconds,
            "last_pet": time_to_text(watchdog.last_pet), "set_by": watchdog.set_by,
            "version": watchdog.version, "expirations": watchdog.expirations}


def _watchdog(row: Any) -> Watchdog:
    return Watchdog(str(row.domain_id), bool(row.enabled), int(row.timeout_seconds),
                    time_from_text(row.last_pet), str(row.set_by), int(row.version),
                    int(row.expirations))


def _damaged(what: str) -> StoreUnavailable:
    return StoreUnavailable(f"{what} is damaged")
