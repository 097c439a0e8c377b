"""Thermal records on SQLite and in memory alike (one contract, the shared ``store``
fixture): exact doubles, compare-and-set, first records added once; then what only SQLite
shows: concurrent writers, damaged rows, and a version-6 store upgraded to version 7."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect

from bios_ws.domain.state import DomainState
from bios_ws.domain.thermal_policy import (
    Sensor,
    SensorOverride,
    ThermalLevel,
    ThermalRecord,
    Thresholds,
)
from bios_ws.errors import StoreUnavailable
from bios_ws.store import SCHEMA_VERSION, open_store

T0 = datetime(2026, 11, 1, 12, 0, 0, 654321, tzinfo=UTC)


def record(domain_id: str = "vm1", **fields: Any) -> ThermalRecord:
    values: dict[str, Any] = {
        "temperature": 0.1 + 0.2, "updated_at": T0, "cpu_seconds": 12.34, "load": 1 / 3,
        "level": ThermalLevel.CRITICAL, "thresholds": Thresholds(70.5, 85.25, 95.125, 1.5),
        "overrides": (SensorOverride(Sensor.CPU, 92.7, T0 + timedelta(minutes=5), "admin:r"),
                      SensorOverride(Sensor.INLET, 31.0, T0 + timedelta(hours=1), "admin:s")),
        **fields}
    return ThermalRecord(domain_id, **values)


def read(store: Any, domain_id: str = "vm1") -> ThermalRecord | None:
    with store.unit_of_work() as uow:
        found: ThermalRecord | None = uow.thermal.get(domain_id)
        return found


def test_a_record_reads_back_exactly(store: Any) -> None:
    assert read(store) is None
    plain = record("vm2", cpu_seconds=None, overrides=(), level=ThermalLevel.NORMAL)
    with store.unit_of_work() as uow:
        assert uow.thermal.add(record()) is True
        assert uow.thermal.add(plain) is True
        uow.commit()
    assert read(store) == record()
    assert read(store, "vm2") == plain
    assert read(store).temperature == 0.30000000000000004  # type: ignore[union-attr]


def test_a_domain_gets_its_first_record_once(store: Any) -> None:
    with store.unit_of_work() as uow:
        assert uow.thermal.add(record()) is True
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.thermal.add(record(temperature=99.0)) is False
        assert uow.thermal.add(record("vm3")) is True  # the unit goes on after a refusal
        uow.commit()
    assert read(store) == record()
    assert read(store, "vm3") == record("vm3")


def test_save_is_a_compare_and_set_on_the_version(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.thermal.add(record())
        uow.commit()
    newer = record().changed(temperature=45.5, level=ThermalLevel.NORMAL, overrides=())
    with store.unit_of_work() as uow:
        assert uow.thermal.save(newer, expected_version=2) is False
        assert uow.thermal.save(record("nobody"), expected_version=1) is False
        assert uow.thermal.save(newer, expected_version=1) is True
        uow.commit()
    assert read(store) == newer and newer.version == 2
    with store.unit_of_work() as uow:  # a second writer that read version 1 loses
        assert uow.thermal.save(record().changed(temperature=1.0), expected_version=1) is False
        uow.commit()
    assert read(store) == newer


def test_uncommitted_changes_are_not_kept(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.thermal.add(record())
    assert read(store) is None


def test_list_and_delete(store: Any) -> None:
    with store.unit_of_work() as uow:
        for name in ("vm3", "vm1", "vm2"):
            uow.thermal.add(record(name))
        uow.commit()
    with store.unit_of_work() as uow:
        uow.begin_writing()  # it reads, then writes
        assert [r.domain_id for r in uow.thermal.list()] == ["vm1", "vm2", "vm3"]
        uow.thermal.delete("vm2")
        uow.thermal.delete("nobody")
        uow.commit()
    with store.unit_of_work() as uow:
        assert [r.domain_id for r in uow.thermal.list()] == ["vm1", "vm3"]


def test_unsettled_leaves_out_the_records_at_the_ambient(store: Any) -> None:
    """The policy's candidates: every record but those at Normal, without overrides,
    within the given degrees of the ambient."""
    settled = {"level": ThermalLevel.NORMAL, "overrides": (), "cpu_seconds": None}
    with store.unit_of_work() as uow:
        uow.thermal.add(record("at-ambient", temperature=25.04, **settled))
        uow.thermal.add(record("below", temperature=24.96, **settled))
        uow.thermal.add(record("cooling", temperature=25.2, **settled))
        uow.thermal.add(record("caution", temperature=25.0,
                               **{**settled, "level": ThermalLevel.CAUTION}))
        uow.thermal.add(record("override", temperature=25.0,
                               **{**settled, "overrides": record().overrides[:1]}))
        uow.commit()
    with store.unit_of_work() as uow:
        assert [r.domain_id for r in uow.thermal.unsettled(25.0, 0.05)] == [
            "caution", "cooling", "override"]
        assert [r.domain_id for r in uow.thermal.unsettled(30.0, 0.05)] == [
            "at-ambient", "below", "caution", "cooling", "override"]


def test_powered_lists_the_machines_not_off(store: Any) -> None:
    from bios_ws.domain.power import MachineKind, MachineRecord, PowerState

    with store.unit_of_work() as uow:
        for name, state in (("vm3", PowerState.ON), ("vm1", PowerState.OFF),
                            ("vm2", PowerState.POWERING_ON), ("vm4", PowerState.PAUSED)):
            uow.machines.add(MachineRecord(name, MachineKind.SIMULATED, state=state))
        uow.commit()
    with store.unit_of_work() as uow:
        assert [m.domain_id for m in uow.machines.powered()] == ["vm2", "vm3", "vm4"]


# -- SQLite only ---------------------------------------------------------------------------


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Any:
    store = open_store(f"sqlite:///{tmp_path / 'vbios.db'}")
    yield store
    store.dispose()


def test_concurrent_writers_of_one_version_one_wins(sqlite_store: Any) -> None:
    with sqlite_store.unit_of_work() as uow:
        uow.thermal.add(record())
        uow.commit()
    results: list[bool] = []
    barrier = threading.Barrier(4)

    def writer(temperature: float) -> None:
        barrier.wait()
        with sqlite_store.unit_of_work() as uow:
            results.append(uow.thermal.save(record().changed(temperature=temperature), 1))
            uow.commit()

    threads = [threading.Thread(target=writer, args=(40.0 + i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False, False, False, True]
    assert read(sqlite_store).version == 2  # type: ignore[union-attr]


def test_a_damaged_row_is_a_store_error(sqlite_store: Any, tmp_path: Path) -> None:
    with sqlite_store.unit_of_work() as uow:
        uow.thermal.add(record())
        uow.commit()
    raw = sqlite3.connect(tmp_path / "vbios.db")
    raw.execute("UPDATE thermal_state SET overrides = '[{\"sensor\": \"GPU\"}]'")
    raw.commit()
    raw.close()
    with pytest.raises(StoreUnavailable, match="thermal record of 'vm1' is damaged"):
        read(sqlite_store)


def test_a_version_6_store_upgrades_in_place_with_its_data(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store = open_store(f"sqlite:///{db}")
    with store.unit_of_work() as uow:
        uow.domains.add(DomainState("old1", 3, {"A": 1}), T0)
        uow.commit()
    store.dispose()
    raw = sqlite3.connect(db)
    raw.execute("DROP TABLE thermal_state")
    raw.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()

    upgraded = open_store(f"sqlite:///{db}")
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION
        with upgraded.engine.connect() as conn:
            assert "thermal_state" in inspect(conn).get_table_names()
        with upgraded.unit_of_work() as uow:
            uow.begin_writing()  # it reads, then writes
            assert uow.domains.get("old1").current == {"A": 1}
            assert uow.thermal.list() == []
            assert uow.thermal.add(record("old1")) is True
            uow.commit()
        assert read(upgraded, "old1") == record("old1")
    finally:
        upgraded.dispose()


def test_processes_evaluating_new_domains_at_once_never_find_the_store_locked(
    tmp_path: Path
) -> None:
    """Two processes' policies (two stores on one SQLite file) add the first records of
    many domains at the same moment: each writing unit begins with its write lock, so one
    waits for the other instead of failing on a read snapshot it cannot upgrade."""
    from bios_ws.domain.power import MachineKind, MachineRecord, PowerState
    from bios_ws.platform.simulated import in_memory_machines
    from bios_ws.registry_file import load_registry
    from bios_ws.service.bios import BiosService
    from bios_ws.service.power import PowerService
    from bios_ws.service.thermal import ThermalService

    url = f"sqlite:///{tmp_path / 'vbios.db'}"
    stores = [open_store(url), open_store(url)]
    try:
        with stores[0].unit_of_work() as uow:
            for number in range(40):
                uow.domains.add(DomainState(f"vm{number}", 1, {}), T0)
                # on, as the store says: the policy evaluates them (it leaves settled off
                # machines alone)
                uow.machines.add(MachineRecord(f"vm{number}", MachineKind.SIMULATED,
                                               state=PowerState.ON))
            uow.commit()
        registry = load_registry()
        services = []
        for store in stores:
            bios = BiosService(store.unit_of_work, registry, lambda: T0)
            platforms = in_memory_machines()
            power = PowerService(store.unit_of_work, lambda: T0, platforms, bios)
            services.append(ThermalService(store.unit_of_work, lambda: T0, platforms, bios,
                                           power))
        together = threading.Barrier(2)
        failures: list[BaseException] = []

        def evaluate(service: ThermalService) -> None:
            together.wait(timeout=10)
            try:
                service.evaluate()
            except BaseException as exc:  # reported below
                failures.append(exc)

        threads = [threading.Thread(target=evaluate, args=(s,)) for s in services]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        with stores[0].unit_of_work() as uow:
            assert len(uow.thermal.list()) == 40
    finally:
        for store in stores:
            store.dispose()
