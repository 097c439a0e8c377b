"""A version-6 store upgrades in place to version 7: its data kept, the event tables
created empty (the first event gets id 1)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import inspect

from bios_ws.domain.events import EventFilter, EventType, make_event
from bios_ws.domain.firmware_update import initial_inventory
from bios_ws.domain.state import DomainState
from bios_ws.store import SCHEMA_VERSION, open_store

T0 = datetime(2026, 11, 1, 12, 0, 0, 654321, tzinfo=UTC)
VERSION_7_TABLES = ("events", "event_subscriptions")


def test_these_tables_came_with_version_7() -> None:
    from bios_ws.store.migrations import MIGRATIONS

    assert set(VERSION_7_TABLES) <= {table.name for table in MIGRATIONS[6].tables}
    assert MIGRATIONS[6].version == 7 <= SCHEMA_VERSION


def test_a_version_6_store_upgrades_in_place_with_its_data(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store = open_store(f"sqlite:///{db}")
    with store.unit_of_work() as uow:
        uow.domains.add(DomainState("old1", 3, {"A": 1}), T0)
        uow.firmware.put_inventory("old1", initial_inventory())
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
            tables = inspect(conn).get_table_names()
            indexes = {i["name"] for i in inspect(conn).get_indexes("events")}
        assert set(VERSION_7_TABLES) <= set(tables)
        assert {"events_by_scope", "events_by_time"} <= indexes
        with upgraded.unit_of_work() as uow:
            uow.begin_writing()  # it reads, then writes
            assert uow.domains.get("old1").current == {"A": 1}
            assert uow.firmware.inventory("old1") == initial_inventory()
            assert uow.events.head() == 0 and uow.events.subscriptions() == []
            event = uow.events.append(make_event(
                EventType.SETTINGS_CHANGED, "old1", "SetAttributes", 4, domain_id="old1",
                origin="/vbios/domains/old1/Bios", at=T0))
            uow.commit()
        assert event.event_id == 1
        with upgraded.unit_of_work() as uow:
            assert [e.event_id for e in uow.events.after(0, EventFilter(None), 5).events] == [1]
    finally:
        upgraded.dispose()
