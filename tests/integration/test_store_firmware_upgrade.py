"""A version-5 store upgrades in place to version 6: its data kept, the firmware update
tables created empty (every domain has its initial inventory until an update)."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import inspect

from bios_ws.domain.firmware_trust import TrustedSigner
from bios_ws.domain.firmware_update import initial_inventory
from bios_ws.domain.state import DomainState
from bios_ws.store import SCHEMA_VERSION, open_store

T0 = datetime(2026, 11, 1, 12, 0, 0, 654321, tzinfo=UTC)

#: The tables version 6 added.
VERSION_6_TABLES = ("firmware_inventory", "firmware_jobs", "firmware_uploads",
                    "firmware_transfer_keys")


def test_the_schema_is_version_6_or_later() -> None:
    assert SCHEMA_VERSION >= 6


def test_a_version_5_store_upgrades_in_place_with_its_data(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    der = b"\x30\x82signer"
    signer = TrustedSigner(fingerprint=hashlib.sha256(der).hexdigest(), der=der,
                           subject="CN=Signer", not_after=T0 + timedelta(days=365),
                           added_at=T0)
    store = open_store(f"sqlite:///{db}")
    with store.unit_of_work() as uow:
        uow.domains.add(DomainState("old1", 3, {"A": 1}), T0)
        uow.credentials.set_incarnation("old1", "0123456789abcdef")
        uow.firmware_trust.add(signer)
        uow.commit()
    store.dispose()
    raw = sqlite3.connect(db)
    for table in VERSION_6_TABLES:
        raw.execute(f"DROP TABLE {table}")
    raw.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()

    upgraded = open_store(f"sqlite:///{db}")
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION
        with upgraded.engine.connect() as conn:
            tables = inspect(conn).get_table_names()
            indexes = {i["name"] for i in inspect(conn).get_indexes("firmware_jobs")}
        assert set(VERSION_6_TABLES) <= set(tables)
        assert "firmware_jobs_by_domain" in indexes
        with upgraded.unit_of_work() as uow:
            uow.begin_writing()  # it reads, then writes
            assert uow.domains.get("old1").current == {"A": 1}
            assert uow.credentials.incarnation("old1") == "0123456789abcdef"
            assert uow.firmware_trust.list() == [signer]
            assert uow.firmware.inventory("old1") is None  # the initial inventory
            assert uow.firmware.jobs("old1") == [] and uow.firmware.uploads() == []
            uow.firmware.put_inventory("old1", initial_inventory())
            assert uow.firmware.use_transfer_key("c" * 64, T0) is True
            uow.commit()
        with upgraded.unit_of_work() as uow:
            uow.begin_writing()  # it reads, then writes
            assert uow.firmware.inventory("old1") == initial_inventory()
            assert uow.firmware.use_transfer_key("c" * 64, T0) is False
    finally:
        upgraded.dispose()
