"""The SQL audit log: chaining, append-only triggers, tamper detection, the version 3 upgrade."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bios_ws.domain.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditRecord,
    verify_chain,
    visible_to,
)
from bios_ws.store import SCHEMA_VERSION, SqlStore, open_store

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "vbios.db"


@pytest.fixture
def store(db: Path) -> Iterator[SqlStore]:
    s = open_store(f"sqlite:///{db}")
    yield s
    s.dispose()


def record(i: int, time: datetime | None = None) -> AuditRecord:
    return AuditRecord(
        time=time or T0 + timedelta(microseconds=i * 1001),
        principal=f"guest:g{i % 3}",
        operation="SetAttributes",
        domain_id=None if i % 4 == 0 else f"g{i % 3}",
        outcome="ok" if i % 2 else "refused:VersionConflict",
        changes_digest=f"{i:064x}",
    )


def append(store: SqlStore, records: list[AuditRecord]) -> None:
    with store.unit_of_work() as uow:
        for r in records:
            uow.audit.append(r)
        uow.commit()


def entries(store: SqlStore, since_seq: int = 1) -> list[AuditEntry]:
    with store.unit_of_work() as uow:
        return list(uow.audit.entries(since_seq=since_seq))


def test_chain_verifies_across_units_of_work(store: SqlStore) -> None:
    for i in range(1, 7):
        append(store, [record(i)])
    got = entries(store)
    assert [e.seq for e in got] == [1, 2, 3, 4, 5, 6]
    assert got[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(got))
    assert verify_chain(got) is None
    assert [e.record() for e in got] == [record(i) for i in range(1, 7)]


def test_times_round_trip_so_hashes_verify(store: SqlStore) -> None:
    plus5 = timezone(timedelta(hours=5, minutes=30))
    times = [
        datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC),  # no microseconds
        datetime(2026, 11, 1, 17, 30, 0, 1, tzinfo=plus5),  # another offset
        datetime(2026, 11, 1, 12, 0, 0, 999999, tzinfo=UTC),
    ]
    with store.unit_of_work() as uow:
        appended = [uow.audit.append(record(i, t)) for i, t in enumerate(times, 1)]
        uow.commit()
    got = entries(store)
    assert got == appended
    assert all(e.time.utcoffset() == timedelta(0) for e in got)
    assert got[1].time == times[1]
    assert verify_chain(got) is None


def test_append_that_is_rolled_back_leaves_no_entry(store: SqlStore) -> None:
    append(store, [record(1)])
    with store.unit_of_work() as uow:
        uow.audit.append(record(2))
    append(store, [record(3)])
    got = entries(store)
    assert [e.seq for e in got] == [1, 2]
    assert got[1].changes_digest == record(3).changes_digest
    assert verify_chain(got) is None


def test_entries_since_and_across_pages(store: SqlStore) -> None:
    append(store, [record(i) for i in range(1, 1203)])
    everything = entries(store)
    assert [e.seq for e in everything] == list(range(1, 1203))
    assert verify_chain(everything) is None
    assert [e.seq for e in entries(store, since_seq=499)] == list(range(499, 1203))
    assert entries(store, since_seq=5000) == []


def test_update_and_delete_of_audit_rows_are_refused(store: SqlStore, db: Path) -> None:
    append(store, [record(i) for i in range(1, 4)])
    raw = sqlite3.connect(db)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("UPDATE audit SET outcome = 'ok' WHERE seq = 2")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("DELETE FROM audit WHERE seq = 3")
        raw.rollback()
    finally:
        raw.close()
    assert verify_chain(entries(store)) is None
    assert len(entries(store)) == 3


def test_altered_row_is_named_once_the_trigger_is_dropped(store: SqlStore, db: Path) -> None:
    append(store, [record(i) for i in range(1, 6)])
    raw = sqlite3.connect(db)
    try:
        raw.execute("DROP TRIGGER audit_no_update")
        raw.execute("UPDATE audit SET outcome = 'ok' WHERE seq = 2")
        raw.commit()
    finally:
        raw.close()
    broken = verify_chain(entries(store))
    assert broken is not None and broken.seq == 2 and "altered" in broken.reason


def test_removed_row_is_named_once_the_trigger_is_dropped(store: SqlStore, db: Path) -> None:
    append(store, [record(i) for i in range(1, 6)])
    raw = sqlite3.connect(db)
    try:
        raw.execute("DROP TRIGGER audit_no_delete")
        raw.execute("DELETE FROM audit WHERE seq = 3")
        raw.commit()
    finally:
        raw.close()
    broken = verify_chain(entries(store))
    assert broken is not None and broken.seq == 3 and "removed" in broken.reason


def test_reopening_reinstalls_dropped_triggers(store: SqlStore, db: Path) -> None:
    append(store, [record(1)])
    raw = sqlite3.connect(db)
    raw.execute("DROP TRIGGER audit_no_update")
    raw.commit()
    raw.close()
    open_store(f"sqlite:///{db}").dispose()
    raw = sqlite3.connect(db)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            raw.execute("UPDATE audit SET outcome = 'x'")
    finally:
        raw.close()


def test_a_version_2_store_gets_the_scope_of_every_entry(store: SqlStore, db: Path) -> None:
    records = [record(i) for i in range(1, 1502)]
    append(store, records)
    store.dispose()
    raw = sqlite3.connect(db)
    raw.execute("DROP TABLE audit_scope")
    raw.execute("DROP TABLE audit_refusals")
    raw.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()
    upgraded = open_store(f"sqlite:///{db}")
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION
        with upgraded.unit_of_work() as uow:
            seen = uow.audit.seen_by("g1", 2000)
            assert uow.refusals.windows() == []
        expected = [e for e in entries(upgraded) if visible_to("g1", e)]
        assert [s.entry for s in seen] == expected
        assert [s.number for s in seen] == list(range(1, len(expected) + 1))
        assert verify_chain(entries(upgraded)) is None
    finally:
        upgraded.dispose()
