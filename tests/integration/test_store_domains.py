"""SqlStore domain repository and unit of work on SQLite (tmp_path)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import text

from bios_ws.domain.state import BootOption, DomainState
from bios_ws.errors import DomainExists, DomainNotFound, StoreUnavailable, VersionConflict
from bios_ws.store import SqlStore, open_store

T0 = datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_store(f"sqlite:///{tmp_path / 'vbios.db'}")
    yield s
    s.dispose()


def rich_state(domain_id: str = "guest-1") -> DomainState:
    return DomainState(
        domain_id=domain_id,
        version=7,
        current={"Flag": True, "Count": 1, "Text": "1", "Big": 2**62, "Zero": 0, "No": False},
        pending={"Count": 5, "Text": "é ünïcode", "Flag": False},
        passwords={"SetupPassword": "scrypt$16384$8$1$c2FsdA==$a2V5"},
        boot_options=(
            BootOption("Disk.Virtio.0", "VirtIO disk 0"),
            BootOption("Pxe.Nic.0", "PXE", enabled=False),
        ),
        boot_order=("Pxe.Nic.0", "Disk.Virtio.0"),
        boot_next="Disk.Virtio.0",
    )


def add(store: SqlStore, state: DomainState, created_at: datetime = T0) -> None:
    with store.unit_of_work() as uow:
        uow.domains.add(state, created_at)
        uow.commit()


def test_round_trip_keeps_every_field_and_value_type(store: SqlStore) -> None:
    state = rich_state()
    add(store, state)
    with store.unit_of_work() as uow:
        got = uow.domains.get("guest-1")
    assert got == state
    assert type(got.current["Flag"]) is bool and type(got.current["No"]) is bool
    assert type(got.current["Count"]) is int and type(got.current["Zero"]) is int
    assert type(got.current["Text"]) is str
    assert got.boot_options[1].enabled is False
    assert isinstance(got.boot_order, tuple)


def test_stored_json_is_deterministic_and_holds_no_clear_password(store: SqlStore) -> None:
    a, b = rich_state("a"), rich_state("b")
    b.current = dict(reversed(list(a.current.items())))
    add(store, a)
    add(store, b)
    with store.engine.connect() as conn:
        query = text("SELECT domain_id, state FROM domains")
        rows: dict[str, str] = {r.domain_id: r.state for r in conn.execute(query)}
    assert rows["a"] == rows["b"]
    assert '"format":1' in rows["a"]


def test_list_add_delete(store: SqlStore) -> None:
    plus2 = timezone(timedelta(hours=2))
    add(store, rich_state("b"), datetime(2026, 11, 1, 14, 0, 0, 123456, tzinfo=plus2))
    add(store, rich_state("a"), T0 + timedelta(seconds=1))
    with store.unit_of_work() as uow:
        summaries = uow.domains.list()
    assert [s.domain_id for s in summaries] == ["a", "b"]
    assert summaries[0].version == 7
    assert summaries[1].created_at == T0 and summaries[1].created_at.tzinfo is not None
    with store.unit_of_work() as uow:
        uow.domains.delete("a")
        uow.commit()
    with store.unit_of_work() as uow:
        assert [s.domain_id for s in uow.domains.list()] == ["b"]
        with pytest.raises(DomainNotFound):
            uow.domains.get("a")


def test_add_existing_is_domain_exists_and_keeps_the_first(store: SqlStore) -> None:
    add(store, rich_state("x"))
    other = rich_state("x")
    other.current = {"Count": 99}
    with store.unit_of_work() as uow, pytest.raises(DomainExists):
        uow.domains.add(other, T0)
    with store.unit_of_work() as uow:
        assert uow.domains.get("x").current["Count"] == 1


def test_missing_domain_is_domain_not_found_everywhere(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.begin_writing()  # it reads, then writes
        with pytest.raises(DomainNotFound):
            uow.domains.get("nope")
        with pytest.raises(DomainNotFound):
            uow.domains.get("nope", for_update=True)
        with pytest.raises(DomainNotFound):
            uow.domains.delete("nope")
        with pytest.raises(DomainNotFound):
            uow.domains.save(rich_state("nope"), expected_version=7)


def test_save_is_compare_and_set(store: SqlStore) -> None:
    add(store, rich_state())
    with store.unit_of_work() as uow:
        state = uow.domains.get("guest-1", for_update=True)
        state.current["Count"] = 2
        state.version = 8
        uow.domains.save(state, expected_version=7)
        uow.commit()
    stale = rich_state()
    stale.current["Count"] = 3
    stale.version = 8
    with store.unit_of_work() as uow, pytest.raises(VersionConflict, match="version 8, not 7"):
        uow.domains.save(stale, expected_version=7)
    with store.unit_of_work() as uow:
        got = uow.domains.get("guest-1")
    assert (got.version, got.current["Count"]) == (8, 2)


def test_leaving_without_commit_rolls_back(store: SqlStore) -> None:
    add(store, rich_state("kept"))
    with store.unit_of_work() as uow:
        uow.domains.add(rich_state("lost"), T0)
        uow.domains.delete("kept")
    with pytest.raises(RuntimeError), store.unit_of_work() as uow:
        uow.domains.add(rich_state("lost2"), T0)
        raise RuntimeError("boom")
    with store.unit_of_work() as uow:
        assert [s.domain_id for s in uow.domains.list()] == ["kept"]


def test_unit_of_work_lifecycle(store: SqlStore) -> None:
    with store.unit_of_work() as uow:
        uow.domains.add(rich_state(), T0)
        uow.commit()
        uow.rollback()  # a no-op after commit
        with pytest.raises(RuntimeError):
            uow.commit()
        with pytest.raises(RuntimeError):
            uow.domains.get("guest-1")
    with store.unit_of_work() as uow:
        assert uow.domains.get("guest-1").version == 7
    empty = store.unit_of_work()
    empty.commit()  # nothing began: nothing to do
    assert store.engine.pool.checkedout() <= 1  # type: ignore[attr-defined]  # this thread keeps one


def test_connections_go_back_to_the_pool(store: SqlStore) -> None:
    add(store, rich_state())
    for _ in range(30):
        with store.unit_of_work() as uow:
            uow.domains.get("guest-1", for_update=True)
        with store.unit_of_work() as uow, pytest.raises(DomainNotFound):
            uow.domains.get("none")
    assert store.engine.pool.checkedout() <= 1  # type: ignore[attr-defined]  # this thread keeps one


def test_naive_datetime_is_refused(store: SqlStore) -> None:
    with store.unit_of_work() as uow, pytest.raises(ValueError):
        uow.domains.add(rich_state(), datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "stored",
    ["not json", '{"format": 99}', '{"format": 1}',
     '{"format":1,"current":{"A":1.5},"pending":{},"passwords":{},"boot_options":[],'
     '"boot_order":[],"boot_next":null}',
     '{"format":1,"current":{},"pending":{},"passwords":{},'
     '"boot_options":[{"id":"a","display_name":"a","enabled":1}],'
     '"boot_order":[],"boot_next":null}'],
)
def test_corrupt_stored_state_is_store_unavailable(store: SqlStore, stored: str) -> None:
    add(store, rich_state())
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE domains SET state = :s"), {"s": stored})
    with store.unit_of_work() as uow, pytest.raises(StoreUnavailable, match="corrupt"):
        uow.domains.get("guest-1")
