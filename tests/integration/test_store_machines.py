"""Machine records on SQLite and in memory alike; a version-1 store upgrades to version 2."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bios_ws.domain.power import MachineKind, MachineRecord, PowerState, ResetCause
from bios_ws.domain.state import DomainState
from bios_ws.errors import DomainExists, DomainNotFound, VersionConflict
from bios_ws.store import SCHEMA_VERSION, open_store

T0 = datetime(2026, 11, 1, 12, 0, 0, 654321, tzinfo=UTC)


def put(store: Any, record: MachineRecord) -> None:
    with store.unit_of_work() as uow:
        uow.machines.add(record)
        uow.commit()


def get(store: Any, domain_id: str) -> MachineRecord:
    with store.unit_of_work() as uow:
        record: MachineRecord = uow.machines.get(domain_id)
        return record


def test_a_record_round_trips_with_every_field(store: Any) -> None:
    record = MachineRecord("vm1", MachineKind.QEMU, PowerState.PAUSED,
                           ResetCause.GUEST_RESET, T0, 4)
    put(store, record)
    assert get(store, "vm1") == record
    put(store, MachineRecord("vm0", MachineKind.SIMULATED))
    with store.unit_of_work() as uow:
        assert [r.domain_id for r in uow.machines.list()] == ["vm0", "vm1"]


def test_save_is_compare_and_set_on_its_own_version(store: Any) -> None:
    put(store, MachineRecord("vm1", MachineKind.SIMULATED))
    on = get(store, "vm1").with_power(PowerState.ON, ResetCause.MANAGEMENT_COMMAND, T0)
    with store.unit_of_work() as uow:
        uow.machines.save(on, expected_version=1)
        uow.commit()
    with store.unit_of_work() as uow, pytest.raises(VersionConflict):
        uow.machines.save(on.with_power(PowerState.OFF), expected_version=1)
    assert get(store, "vm1") == on


def test_refusals(store: Any) -> None:
    put(store, MachineRecord("vm1", MachineKind.SIMULATED))
    with store.unit_of_work() as uow, pytest.raises(DomainExists):
        uow.machines.add(MachineRecord("vm1", MachineKind.QEMU))
    with pytest.raises(DomainNotFound):
        get(store, "nobody")
    with store.unit_of_work() as uow:
        uow.machines.delete("vm1")
        uow.machines.delete("vm1")  # nothing left: no error
        uow.commit()
    with pytest.raises(DomainNotFound):
        get(store, "vm1")


def test_a_version_1_store_gets_a_simulated_machine_for_every_domain(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store = open_store(f"sqlite:///{db}")
    with store.unit_of_work() as uow:
        uow.domains.add(DomainState("old1", 3, {"A": 1}), T0)
        uow.domains.add(DomainState("old2", 1, {"A": 2}), T0)
        uow.commit()
    store.dispose()
    raw = sqlite3.connect(db)
    raw.execute("DROP TABLE machines")
    raw.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()
    upgraded = open_store(f"sqlite:///{db}")
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION
        with upgraded.unit_of_work() as uow:
            assert uow.machines.list() == [MachineRecord("old1", MachineKind.SIMULATED),
                                           MachineRecord("old2", MachineKind.SIMULATED)]
            assert uow.domains.get("old1").version == 3  # settings untouched
    finally:
        upgraded.dispose()
