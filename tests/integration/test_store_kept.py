"""Each thread keeps one SQLite connection between its units of work (``store.kept``)."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.domain.state import DomainState
from bios_ws.store import SqlStore, open_store
from tests.integration.test_store_domains import T0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_store(f"sqlite:///{tmp_path / 'vbios.db'}")
    with s.unit_of_work() as uow:
        uow.domains.add(DomainState("a", 1, {"A": 1}), T0)
        uow.commit()
    yield s
    s.dispose()


def checked_out(store: SqlStore) -> int:
    return int(store.engine.pool.checkedout())  # type: ignore[attr-defined]


def test_a_thread_reuses_its_connection_and_a_nested_unit_gets_another(store: SqlStore) -> None:
    with store.unit_of_work() as first:
        outer = first.connection(write=False)
        with store.unit_of_work() as nested:
            assert nested.connection(write=False) is not outer
    with store.unit_of_work() as second:
        assert second.connection(write=True) is outer  # the write lock is per unit
        second.domains.get("a", for_update=True)
    assert checked_out(store) == 1


def test_a_connection_whose_unit_failed_is_not_kept(store: SqlStore) -> None:
    with store.unit_of_work() as first:
        kept = first.connection(write=False)
    with pytest.raises(ZeroDivisionError), store.unit_of_work() as failing:
        assert failing.connection(write=False) is kept
        raise ZeroDivisionError
    with store.unit_of_work() as after:  # a clean rollback: kept still
        assert after.connection(write=False) is kept
        after.connection(write=False).close()  # broken under the unit's feet
    with store.unit_of_work() as fresh:
        assert fresh.connection(write=False) is not kept


def test_the_connections_of_ended_threads_and_of_a_disposed_store_are_closed(
    store: SqlStore,
) -> None:
    def read() -> None:
        with store.unit_of_work() as uow:
            uow.domains.get("a")

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    gc.collect()
    assert checked_out(store) == 1  # this thread's (the fixture wrote with it)
    read()
    assert checked_out(store) == 1
    store.dispose()
    assert checked_out(store) == 0


def _bump(store: SqlStore) -> None:
    """Another thread's unit commits a new version of domain "a"."""
    def write() -> None:
        with store.unit_of_work() as uow:
            state = uow.domains.get("a", for_update=True)
            uow.domains.save(DomainState("a", state.version + 1, {"A": 2}), state.version)
            uow.commit()

    writer = threading.Thread(target=write)
    writer.start()
    writer.join(timeout=30)


def test_a_reading_unit_begun_on_the_driver_reads_one_snapshot(store: SqlStore) -> None:
    """A reading unit begins its transaction on the driver, not through SQLAlchemy: its
    reads still see one state of the store, whatever commits meanwhile."""
    with store.unit_of_work() as reader:
        before = reader.domains.get("a").version
        _bump(store)
        assert reader.domains.get("a").version == before
        assert reader.records.get("no-such-key") is None  # through SQLAlchemy: it joins
    with store.unit_of_work() as later:
        assert later.domains.get("a").version == before + 1


def test_a_reading_unit_that_writes_is_named_in_the_log_and_begin_writing_is_synced(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """SQLite cannot turn a read snapshot into a write once another writer committed after
    it began ("database is locked" at once): a unit that reads then writes still commits
    when no one wrote meanwhile, and is named in the log; one that calls begin_writing first
    takes the write lock at its start."""
    from bios_ws.store import durability

    synced: list[int] = []
    wait = durability.WalSync.wait_durable
    monkeypatch.setattr(durability.WalSync, "wait_durable",
                        lambda self, ticket: (synced.append(ticket), wait(self, ticket)))
    with caplog.at_level("WARNING", logger="bios_ws.store"), store.unit_of_work() as reader:
        state = reader.domains.get("a")  # begun as a reading unit
        reader.domains.save(DomainState("a", state.version + 1, {"A": 2}), state.version)
        reader.commit()
    assert "began reading, then wrote (" in caplog.text and __file__ in caplog.text
    assert len(synced) == 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="bios_ws.store"), store.unit_of_work() as uow:
        uow.begin_writing()
        state = uow.domains.get("a")
        uow.domains.save(DomainState("a", state.version + 1, {"A": 3}), state.version)
        uow.commit()
    assert caplog.text == "" and len(synced) == 2  # acknowledged only once on the disk
    with store.unit_of_work() as check:
        assert check.domains.get("a").current == {"A": 3}
    with store.unit_of_work() as kept:  # the kept connection is clean for the next unit
        kept.connection(write=False)
        assert not kept.connection(write=False).in_transaction()
    assert checked_out(store) == 1
