"""The host grants (which domains a host holding a host certificate may speak for), on
memory, SQLite and PostgreSQL alike (one contract); schema version 9."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bios_ws.domain.credentials import HostGrant
from bios_ws.store import SCHEMA_VERSION, open_store
from bios_ws.store.migrations import MIGRATIONS
from bios_ws.store.sql import store_status
from tests.integration.test_store_migrations import run_sql

T0 = datetime(2026, 11, 1, 12, 0, 0, 654321, tzinfo=UTC)
T1 = datetime(2026, 11, 2, 8, 30, tzinfo=UTC)


def test_grants_are_replaced_per_host_keeping_the_time_of_those_kept(store: Any) -> None:
    with store.unit_of_work() as uow:
        assert uow.host_grants.list() == []
        uow.host_grants.replace("rack1-a", ["vm2", "vm1"], T0)
        uow.host_grants.replace("rack1-b", ["vm1"], T0)
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.host_grants.granted("rack1-a", "vm1")
        assert uow.host_grants.granted("rack1-b", "vm1")
        assert not uow.host_grants.granted("rack1-b", "vm2")
        assert not uow.host_grants.granted("nobody", "vm1")
        assert uow.host_grants.list("rack1-a") == [HostGrant("rack1-a", "vm1", T0),
                                                   HostGrant("rack1-a", "vm2", T0)]
        uow.host_grants.replace("rack1-a", ["vm2", "vm3", "vm3"], T1)
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.host_grants.list() == [HostGrant("rack1-a", "vm2", T0),
                                          HostGrant("rack1-a", "vm3", T1),
                                          HostGrant("rack1-b", "vm1", T0)]


def test_grants_go_with_their_host_or_their_domain(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.host_grants.replace("rack1-a", ["vm1", "vm2"], T0)
        uow.host_grants.replace("rack1-b", ["vm1"], T0)
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.host_grants.remove_domain("vm1") == 2
        assert uow.host_grants.remove_host("nobody") == 0
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.host_grants.list() == [HostGrant("rack1-a", "vm2", T0)]
        assert uow.host_grants.remove_host("rack1-a") == 1
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.host_grants.list() == []


def test_a_unit_left_without_commit_grants_nothing(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.host_grants.replace("rack1-a", ["vm1"], T0)
    with store.unit_of_work() as uow:
        assert not uow.host_grants.granted("rack1-a", "vm1")


def test_version_9_adds_the_grants_table_empty() -> None:
    assert MIGRATIONS[8].version == 9 <= SCHEMA_VERSION
    assert [t.name for t in MIGRATIONS[8].tables] == ["host_grants"]
    assert MIGRATIONS[8].fill is None


def test_a_version_8_store_gets_the_grants_table_by_upgrade(empty_url: str) -> None:
    open_store(empty_url).dispose()
    run_sql(empty_url, "DROP TABLE host_grants",
            "UPDATE meta SET value = '8' WHERE key = 'schema_version'")
    pending = [m.version for m in store_status(empty_url).pending]
    assert pending == list(range(9, SCHEMA_VERSION + 1))
    store = open_store(empty_url, upgrade=True)
    try:
        assert store.schema_version() == SCHEMA_VERSION
        with store.unit_of_work() as uow:
            uow.host_grants.replace("rack1-a", ["vm1"], T0)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.host_grants.granted("rack1-a", "vm1")
    finally:
        store.dispose()
