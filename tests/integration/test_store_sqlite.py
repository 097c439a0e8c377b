"""SqlStore on a SQLite file: PRAGMAs, schema version, write locking, failures."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from bios_ws.domain.state import DomainState
from bios_ws.errors import StoreUnavailable
from bios_ws.store import SCHEMA_VERSION, SqlStore, open_store

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def url(path: Path) -> str:
    return f"sqlite:///{path}"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "vbios.db"


@pytest.fixture
def store(db: Path) -> Iterator[SqlStore]:
    s = open_store(url(db), busy_timeout_ms=300)
    yield s
    s.dispose()


def add(store: SqlStore, domain_id: str) -> None:
    with store.unit_of_work() as uow:
        uow.domains.add(DomainState(domain_id, 1, {"A": 1}), T0)
        uow.commit()


def test_pragmas_are_set_on_every_connection(store: SqlStore) -> None:
    with store.engine.connect() as a, store.engine.connect() as b:
        for conn in (a, b):
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 300


def test_default_busy_timeout_is_ten_seconds(db: Path) -> None:
    s = open_store(url(db))
    try:
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    finally:
        s.dispose()


def test_database_file_is_private(store: SqlStore, db: Path) -> None:
    add(store, "a")
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    wal = db.with_name(db.name + "-wal")
    assert wal.exists() and stat.S_IMODE(wal.stat().st_mode) == 0o600


def test_schema_version_recorded_and_reopen_keeps_data(store: SqlStore, db: Path) -> None:
    assert store.schema_version() == SCHEMA_VERSION
    add(store, "a")
    store.dispose()
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )
    again = open_store(url(db))
    try:
        assert again.schema_version() == SCHEMA_VERSION
        with again.unit_of_work() as uow:
            assert uow.domains.get("a").current == {"A": 1}
    finally:
        again.dispose()


def test_newer_schema_version_is_refused(store: SqlStore, db: Path) -> None:
    store.dispose()
    raw = sqlite3.connect(db)
    raw.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                (str(SCHEMA_VERSION + 1),))
    raw.commit()
    raw.close()
    with pytest.raises(StoreUnavailable, match="newer") as info:
        open_store(url(db))
    assert str(SCHEMA_VERSION + 1) in str(info.value)


@pytest.mark.parametrize("content", [b"this is not a database" * 100, b"\x00" * 4096])
def test_corrupt_file_is_store_unavailable(db: Path, content: bytes) -> None:
    db.write_bytes(content)
    with pytest.raises(StoreUnavailable):
        open_store(url(db))


def test_unreachable_file_is_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        open_store(url(tmp_path / "no" / "such" / "dir" / "vbios.db"))


@pytest.mark.parametrize("bad", ["sqlite://", "sqlite:///:memory:", "not a url", "nosuch://x/y"])
def test_unusable_urls_are_store_unavailable(bad: str) -> None:
    with pytest.raises(StoreUnavailable):
        open_store(bad)


def test_locked_database_is_store_unavailable_without_sql_in_message(
    store: SqlStore, db: Path
) -> None:
    add(store, "a")
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with store.unit_of_work() as uow, pytest.raises(StoreUnavailable) as info:
            uow.domains.add(DomainState("b", 1, {"Secret": "x"}), T0)
        message = str(info.value)
        assert "INSERT" not in message and "Secret" not in message and "SELECT" not in message
        with store.unit_of_work() as uow:  # WAL: readers are not blocked by the writer
            assert [s.domain_id for s in uow.domains.list()] == ["a"]
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.engine.pool.checkedout() <= 1  # type: ignore[attr-defined]  # this thread keeps one


def test_a_writing_unit_takes_the_write_lock_at_its_start(store: SqlStore, db: Path) -> None:
    add(store, "a")
    other = sqlite3.connect(db, isolation_level=None, timeout=0.1)
    try:
        with store.unit_of_work() as uow:
            uow.domains.get("a", for_update=True)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # released when the unit of work left
        other.execute("ROLLBACK")
        with store.unit_of_work() as uow:
            uow.domains.get("a")  # a read takes no write lock
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
    finally:
        other.close()


def test_schema_version_of_empty_database_is_refused(store: SqlStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM meta"))
    with pytest.raises(StoreUnavailable):
        store.schema_version()
