"""The SQLite store on a worker's event loop: reads run there, a write raises WouldBlock
before it changes anything or takes the writers' turn (``bios_ws.blocking``)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.blocking import WouldBlock, on_event_loop
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


def _write(store: SqlStore, value: int) -> None:
    with store.unit_of_work() as uow:
        state = uow.domains.get("a", for_update=True)
        version = state.version
        state.current["A"] = value
        state.version += 1
        uow.domains.save(state, version)
        uow.commit()


def test_a_reading_unit_runs_on_the_loop(store: SqlStore) -> None:
    with on_event_loop(), store.unit_of_work() as uow:
        assert uow.domains.get("a").current == {"A": 1}


def test_a_writing_unit_raises_before_it_changes_anything(store: SqlStore) -> None:
    with pytest.raises(WouldBlock, match="a write to the store"), on_event_loop():
        _write(store, 2)
    with store.unit_of_work() as uow:
        assert (uow.domains.get("a").version, uow.domains.get("a").current) == (1, {"A": 1})


def test_a_reading_unit_that_would_write_raises_at_the_write(store: SqlStore) -> None:
    with pytest.raises(WouldBlock), on_event_loop(), store.unit_of_work() as uow:
        state = uow.domains.get("a")  # read on the loop: fine
        state.version += 1
        uow.domains.save(state, 1)  # the write: refused on the loop
    with store.unit_of_work() as uow:
        assert uow.domains.get("a").version == 1


def test_the_write_refused_on_the_loop_holds_no_turn_and_runs_on_a_thread(
    store: SqlStore,
) -> None:
    with pytest.raises(WouldBlock), on_event_loop():
        _write(store, 2)
    # another thread (the pool's) writes at once: no writer's turn or lock was left held
    done = threading.Event()
    thread = threading.Thread(target=lambda: (_write(store, 3), done.set()))
    thread.start()
    thread.join(10)
    assert done.is_set()
    with store.unit_of_work() as uow:
        assert uow.domains.get("a").current == {"A": 3}
