"""The System Event Log, wake alarms and watchdogs on SQLite and in memory alike (one
contract, the shared ``store`` fixture): the ring, Ids never reused, policies, claims by
compare-and-set; then what only SQLite shows: a version-6 store upgrading to 7, damaged
rows, and two workers claiming one alarm."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect

from bios_ws.domain import sel
from bios_ws.domain.sel import OverWritePolicy, SelLog, SelPolicy, SelRecord, Severity
from bios_ws.domain.state import DomainState
from bios_ws.domain.timers import WakeAlarm, Watchdog
from bios_ws.errors import StoreUnavailable
from bios_ws.store import SCHEMA_VERSION, open_store

T0 = datetime(2026, 11, 1, 12, 0, 0, 654321, tzinfo=UTC)
NEVER = OverWritePolicy.NEVER_OVERWRITES
VERSION_7_TABLES = ("sel_logs", "sel_entries", "wake_alarms", "watchdogs")


def record(n: int, at: datetime = T0) -> SelRecord:
    return sel.power_changed(at + timedelta(seconds=n), "On", f"cause-{n}")


def append(store: Any, domain_id: str, *records: SelRecord) -> list[Any]:
    with store.unit_of_work() as uow:
        added = [uow.sel.append(domain_id, r) for r in records]
        uow.commit()
    return added


def read(store: Any, how: Any) -> Any:
    with store.unit_of_work() as uow:
        return how(uow)


def ids(store: Any, domain_id: str = "vm1") -> list[int]:
    return [e.entry_id for e in read(store, lambda uow: uow.sel.entries(domain_id))]


# -- the event log ------------------------------------------------------------------------

def test_an_entry_round_trips_every_field(store: Any) -> None:
    full = SelRecord(T0, Severity.CRITICAL, "VbiosSel.1.0.X", "m\u00e9ssage \"quoted\"",
                     ("a", "", "c,d", "\u00e9"), "Watchdog", "Upper Critical - going high")
    [entry] = append(store, "vm1", full)
    assert (entry.domain_id, entry.entry_id) == ("vm1", 1)
    [back] = read(store, lambda uow: uow.sel.entries("vm1"))
    assert back == entry and back.message_args == full.message_args
    assert back.created == T0


def test_a_log_never_written_has_the_default_policy_and_nothing(store: Any) -> None:
    assert read(store, lambda uow: uow.sel.log("vm1")) == SelLog("vm1", SelPolicy())
    assert read(store, lambda uow: uow.sel.entries("vm1")) == []


def test_ids_grow_per_domain_and_logs_are_apart(store: Any) -> None:
    append(store, "vm1", record(1), record(2))
    append(store, "vm2", record(3))
    assert ids(store) == [1, 2] and ids(store, "vm2") == [1]
    assert read(store, lambda uow: uow.sel.log("vm1")).last_id == 2


def test_a_full_ring_wraps_dropping_its_oldest(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.sel.set_policy("vm1", SelPolicy(16))
        uow.commit()
    append(store, "vm1", *(record(n) for n in range(20)))
    assert ids(store) == list(range(5, 21))
    log = read(store, lambda uow: uow.sel.log("vm1"))
    assert (log.entries, log.last_id, log.dropped) == (16, 20, 0)


def test_a_full_log_that_never_overwrites_refuses_and_counts(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.sel.set_policy("vm1", SelPolicy(16, NEVER))
        uow.commit()
    added = append(store, "vm1", *(record(n) for n in range(18)))
    assert added[15] is not None and added[16:] == [None, None]
    assert ids(store) == list(range(1, 17))
    log = read(store, lambda uow: uow.sel.log("vm1"))
    assert (log.entries, log.last_id, log.dropped, log.policy.overwrite) == (16, 16, 2, NEVER)


def test_clear_removes_every_entry_and_ids_go_on(store: Any) -> None:
    append(store, "vm1", record(1), record(2), record(3))
    with store.unit_of_work() as uow:
        assert uow.sel.clear("vm1") == 3
        uow.sel.append("vm1", sel.log_cleared(T0, "admin:root", 3))
        uow.commit()
    assert ids(store) == [4]
    assert read(store, lambda uow: uow.sel.clear("none")) == 0


def test_a_smaller_ring_keeps_the_newest(store: Any) -> None:
    append(store, "vm1", *(record(n) for n in range(40)))
    with store.unit_of_work() as uow:
        assert uow.sel.set_policy("vm1", SelPolicy(16, NEVER)) == 24
        uow.commit()
    assert ids(store) == list(range(25, 41))
    assert read(store, lambda uow: uow.sel.log("vm1")).policy == SelPolicy(16, NEVER)


def test_an_uncommitted_append_leaves_nothing(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.sel.append("vm1", record(1))  # no commit: rolled back
    assert ids(store) == []
    assert read(store, lambda uow: uow.sel.log("vm1")).last_id == 0


def test_forget_domain_removes_the_log_alarm_and_watchdog(store: Any) -> None:
    append(store, "vm1", record(1))
    append(store, "vm2", record(2))
    with store.unit_of_work() as uow:
        uow.sel.set_policy("vm1", SelPolicy(32))
        uow.timers.put_alarm(WakeAlarm("vm1", T0, "guest:vm1", T0))
        uow.timers.save_watchdog(Watchdog("vm1", True, 30, T0, "guest:vm1"), None)
        uow.commit()
    with store.unit_of_work() as uow:
        uow.sel.forget_domain("vm1")
        uow.timers.forget_domain("vm1")
        uow.commit()
    assert read(store, lambda uow: uow.sel.log("vm1")) == SelLog("vm1", SelPolicy())
    assert ids(store) == [] and ids(store, "vm2") == [1]
    assert read(store, lambda uow: (uow.timers.alarm("vm1"), uow.timers.watchdog("vm1"))) == (
        None, None)


# -- wake alarms --------------------------------------------------------------------------

def test_an_alarm_is_replaced_with_a_new_version(store: Any) -> None:
    with store.unit_of_work() as uow:
        first = uow.timers.put_alarm(WakeAlarm("vm1", T0, "guest:vm1", T0, version=9))
        second = uow.timers.put_alarm(WakeAlarm("vm1", T0 + timedelta(hours=1), "admin:a",
                                                T0))
        uow.commit()
    assert (first.version, second.version) == (1, 2)
    assert read(store, lambda uow: uow.timers.alarm("vm1")) == second
    assert read(store, lambda uow: uow.timers.alarm("vm1", for_update=True)) == second


def test_due_alarms_are_the_ones_whose_time_came_oldest_first(store: Any) -> None:
    with store.unit_of_work() as uow:
        for name, minutes in (("late", 10), ("first", -5), ("now", 0), ("soon", -1)):
            uow.timers.put_alarm(WakeAlarm(name, T0 + timedelta(minutes=minutes), "x", T0))
        uow.commit()
    due = read(store, lambda uow: uow.timers.due_alarms(T0))
    assert [a.domain_id for a in due] == ["first", "soon", "now"]


def test_an_alarm_is_claimed_once_and_only_at_its_version(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.timers.put_alarm(WakeAlarm("vm1", T0, "guest:vm1", T0))
        uow.timers.put_alarm(WakeAlarm("vm1", T0, "guest:vm1", T0))  # version 2
        uow.commit()
    assert not read(store, lambda uow: uow.timers.remove_alarm("vm1", expected_version=1))
    with store.unit_of_work() as uow:
        assert uow.timers.remove_alarm("vm1", expected_version=2)
        uow.commit()
    assert not read(store, lambda uow: uow.timers.remove_alarm("vm1"))
    assert read(store, lambda uow: uow.timers.alarm("vm1")) is None


# -- watchdogs ----------------------------------------------------------------------------

def test_a_watchdog_is_saved_by_compare_and_set(store: Any) -> None:
    dog = Watchdog("vm1", True, 30, T0, "guest:vm1")
    with store.unit_of_work() as uow:
        assert uow.timers.save_watchdog(dog, None)
        assert not uow.timers.save_watchdog(dog, None)  # one exists now
        uow.commit()
    petted = dog.petted(T0 + timedelta(seconds=5))
    with store.unit_of_work() as uow:
        assert not uow.timers.save_watchdog(petted, 7)
        assert uow.timers.save_watchdog(petted, 1)
        uow.commit()
    bitten = petted.bitten(T0 + timedelta(minutes=1))
    with store.unit_of_work() as uow:
        assert not uow.timers.save_watchdog(bitten, 1)  # stale: another worker's claim
        assert uow.timers.save_watchdog(bitten, 2)
        uow.commit()
    assert read(store, lambda uow: uow.timers.watchdog("vm1")) == bitten
    assert read(store, lambda uow: uow.timers.watchdog("vm1", for_update=True)) == bitten


def test_armed_watchdogs_leave_the_disarmed_out(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.timers.save_watchdog(Watchdog("b", True, 30, T0, "x"), None)
        uow.timers.save_watchdog(Watchdog("a", True, 60, T0, "x"), None)
        uow.timers.save_watchdog(Watchdog("c", False, 30, T0, "x"), None)
        uow.commit()
    assert [w.domain_id for w in read(store, lambda uow: uow.timers.armed_watchdogs())] == [
        "a", "b"]


# -- SQLite only --------------------------------------------------------------------------

def test_these_tables_came_with_version_7() -> None:
    from bios_ws.store.migrations import MIGRATIONS

    assert set(VERSION_7_TABLES) <= {table.name for table in MIGRATIONS[6].tables}
    assert MIGRATIONS[6].version == 7 <= SCHEMA_VERSION


def test_a_version_6_store_upgrades_in_place_with_its_data(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store = open_store(f"sqlite:///{db}")
    with store.unit_of_work() as uow:
        uow.domains.add(DomainState("old1", 3, {"A": 1}), T0)
        uow.commit()
    store.dispose()
    raw = sqlite3.connect(db)
    for table in VERSION_7_TABLES:
        raw.execute(f"DROP TABLE {table}")
    raw.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()
    upgraded = open_store(f"sqlite:///{db}")
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION
        with upgraded.engine.connect() as conn:
            assert set(VERSION_7_TABLES) <= set(inspect(conn).get_table_names())
        with upgraded.unit_of_work() as uow:
            assert uow.domains.get("old1").current == {"A": 1}
            assert uow.sel.entries("old1") == [] and uow.timers.alarm("old1") is None
    finally:
        upgraded.dispose()


@pytest.mark.parametrize(("table", "column", "value"), [
    ("sel_entries", "message_args", "not json"),
    ("sel_entries", "message_args", "[1, 2]"),
    ("sel_entries", "severity", "Purple"),
    ("sel_logs", "overwrite_policy", "Sometimes"),
    ("sel_logs", "max_entries", "3"),
])
def test_a_damaged_row_is_store_unavailable(tmp_path: Path, table: str, column: str,
                                            value: str) -> None:
    db = tmp_path / "damaged.db"
    store = open_store(f"sqlite:///{db}")
    try:
        append(store, "vm1", record(1))
        with store.unit_of_work() as uow:
            uow.sel.set_policy("vm1", SelPolicy(16))
            uow.commit()
        raw = sqlite3.connect(db)
        raw.execute(f"UPDATE {table} SET {column} = ?", (value,))
        raw.commit()
        raw.close()
        with pytest.raises(StoreUnavailable, match="damaged"):
            read(store, lambda uow: (uow.sel.log("vm1"), uow.sel.entries("vm1")))
    finally:
        store.dispose()


def test_two_workers_claiming_one_alarm_one_wins(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'vbios.db'}"
    setup = open_store(url)
    with setup.unit_of_work() as uow:
        alarm = uow.timers.put_alarm(WakeAlarm("vm1", T0, "guest:vm1", T0))
        uow.commit()
    setup.dispose()
    stores = [open_store(url) for _ in range(8)]
    start = threading.Barrier(len(stores))
    won: list[bool] = []

    def claim(store: Any) -> None:
        start.wait()
        with store.unit_of_work() as uow:
            claimed = uow.timers.remove_alarm("vm1", expected_version=alarm.version)
            uow.commit()
        won.append(claimed)

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for store in stores:
        store.dispose()
    assert sorted(won) == [False] * 7 + [True]
