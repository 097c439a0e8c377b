"""Host records on SQLite and in memory alike (one contract): versions from 1, and the
version read alone (the per-call check of the registry in force)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

T0 = datetime(2026, 11, 1, 12, 0, 0, 654321, tzinfo=UTC)


def test_a_record_is_versioned_from_one_and_its_version_reads_alone(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.begin_writing()  # it reads, then writes
        assert uow.records.version("k") is None
        assert uow.records.put("k", "first", T0).version == 1
        uow.commit()
    with store.unit_of_work() as uow:
        uow.begin_writing()  # it reads, then writes
        assert uow.records.version("k") == 1
        assert uow.records.put("k", "second", T0).version == 2
        assert uow.records.version("k") == 2  # its own write, within the unit
        assert uow.records.version("other") is None
    with store.unit_of_work() as uow:  # rolled back: still the first
        assert uow.records.version("k") == 1
        record = uow.records.get("k")
        assert record is not None and (record.value, record.updated_at) == ("first", T0)
