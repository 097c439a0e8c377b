"""The schema's migrations on SQLite and PostgreSQL: a new store, a newer one refused, an
older one upgraded (SQLite when opened, PostgreSQL by `vbios store upgrade` only)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from bios_ws.domain.power import MachineKind, MachineRecord
from bios_ws.domain.state import DomainState
from bios_ws.errors import StoreUnavailable
from bios_ws.store import SCHEMA_VERSION, open_store
from bios_ws.store.migrations import LATEST, MIGRATIONS
from bios_ws.store.schema import metadata
from bios_ws.store.sql import store_status

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
VERSION_7_TABLES = ("events", "event_subscriptions", "sel_logs", "sel_entries", "wake_alarms",
                    "watchdogs", "thermal_state")
#: What version 8 added: the hosts, and each machine's host.
VERSION_8_UNDONE = ("DROP TABLE hosts", "ALTER TABLE machines DROP COLUMN host")
#: What version 9 added: the host grants; version 10: remotes and routes.
VERSION_9_UNDONE = ("DROP TABLE host_grants", "DROP TABLE routes", "DROP TABLE remotes")


def run_sql(url: str, *statements: str) -> None:
    """``statements`` in one transaction, on the database as it is (no schema check)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


def test_the_migrations_are_numbered_one_by_one_up_to_the_schema_version() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, SCHEMA_VERSION + 1))
    assert LATEST == SCHEMA_VERSION


def test_a_new_store_gets_every_table_of_the_schema(empty_url: str) -> None:
    assert store_status(empty_url).found is None
    store = open_store(empty_url)
    try:
        with store.engine.connect() as conn:
            assert set(inspect(conn).get_table_names()) == set(metadata.tables)
        assert store.schema_version() == SCHEMA_VERSION
    finally:
        store.dispose()
    created = {table.name for m in MIGRATIONS for table in m.tables}
    assert created == set(metadata.tables)
    assert store_status(empty_url).pending == ()


def test_a_store_newer_than_this_code_is_refused(empty_url: str) -> None:
    open_store(empty_url).dispose()
    run_sql(empty_url, f"UPDATE meta SET value = '{SCHEMA_VERSION + 1}'"
                       " WHERE key = 'schema_version'")
    for upgrade in (None, True):
        with pytest.raises(StoreUnavailable, match="newer than this vbios understands"):
            open_store(empty_url, upgrade=upgrade)
    assert store_status(empty_url).too_new


def make_version_6(url: str) -> None:
    store = open_store(url)
    try:
        with store.unit_of_work() as uow:
            uow.domains.add(DomainState("old1", 3, {"A": 1}), T0)
            uow.commit()
    finally:
        store.dispose()
    run_sql(url, *(f"DROP TABLE {table}" for table in VERSION_7_TABLES), *VERSION_8_UNDONE,
            *VERSION_9_UNDONE, "UPDATE meta SET value = '6' WHERE key = 'schema_version'")


def test_an_older_sqlite_store_is_upgraded_when_opened(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'vbios.db'}"
    make_version_6(url)
    assert [m.version for m in store_status(url).pending] == list(range(7, SCHEMA_VERSION + 1))
    store = open_store(url)
    try:
        assert store.schema_version() == SCHEMA_VERSION
    finally:
        store.dispose()


def test_an_older_postgresql_store_waits_for_vbios_store_upgrade(
        empty_postgres_url: str) -> None:
    make_version_6(empty_postgres_url)
    with pytest.raises(StoreUnavailable, match=r"older than this vbios needs.*vbios store upgrade"):
        open_store(empty_postgres_url)
    assert store_status(empty_postgres_url).found == 6
    upgraded = open_store(empty_postgres_url, upgrade=True)
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION
        with upgraded.unit_of_work() as uow:
            assert uow.domains.get("old1").current == {"A": 1}
            assert uow.events.head() == 0 and uow.sel.entries("old1") == []
    finally:
        upgraded.dispose()
    open_store(empty_postgres_url).dispose()  # now the server's open takes it


def test_an_upgrade_from_version_1_fills_the_new_tables(empty_url: str) -> None:
    """The data steps run on both back ends: machines, scopes and incarnations of what a
    version 1 store held."""
    make_version_6(empty_url)
    run_sql(empty_url, *(f"DROP TABLE {t.name}" for m in MIGRATIONS[1:6] for t in m.tables),
            "UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    store = open_store(empty_url, upgrade=True)
    try:
        with store.unit_of_work() as uow:
            assert uow.machines.get("old1").state.value == "Off"
            assert uow.credentials.incarnation("old1")
    finally:
        store.dispose()


def test_an_upgrade_to_version_8_gives_the_machines_a_host_column(empty_url: str) -> None:
    """A store of version 7 has machines without host: they stay unassigned (NULL) until
    the store's first host claims them (``service.hosts``)."""
    store = open_store(empty_url)
    try:
        with store.unit_of_work() as uow:
            uow.domains.add(DomainState("old1", 3, {"A": 1}), T0)
            uow.machines.add(MachineRecord("old1", MachineKind.SIMULATED))
            uow.commit()
    finally:
        store.dispose()
    run_sql(empty_url, *VERSION_8_UNDONE,
            *VERSION_9_UNDONE, "UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    upgraded = open_store(empty_url, upgrade=True)
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION
        with upgraded.unit_of_work() as uow:
            assert uow.machines.get("old1").host is None
            assert uow.hosts.list() == []
    finally:
        upgraded.dispose()
