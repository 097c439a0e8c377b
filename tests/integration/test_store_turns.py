"""Each domain's turn for long operations (``DomainTurns``) on the memory fake, SQLite and
PostgreSQL; on PostgreSQL across two stores (two hosts), the deadlock retry, and the
shared hold of the registry in force that lets settings writers pass each other."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from bios_ws.domain.ports import DomainTurns
from bios_ws.domain.state import DomainState
from bios_ws.errors import StoreConflict
from bios_ws.store import SqlStore, open_store
from bios_ws.store.retry import retry_conflicts
from bios_ws.store.turns import TURN_LOCK_CLASS
from tests.waiting import wait_for

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def in_thread(work: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


def test_a_second_taker_of_a_domain_waits_for_the_first(store: Any) -> None:
    turns: DomainTurns = store.turns
    order: list[str] = []
    trying = threading.Event()

    def second() -> None:
        trying.set()
        with turns.turn("vm1"):
            order.append("second in")

    with turns.turn("vm1"):
        thread = in_thread(second)
        trying.wait(10)
        order.append("first out")
    thread.join(30)
    assert order == ["first out", "second in"]


def test_other_domains_and_the_holding_thread_do_not_wait(store: Any) -> None:
    turns: DomainTurns = store.turns
    done: list[str] = []

    def other_domain() -> None:
        with turns.turn("vm2"):
            done.append("vm2")

    with turns.turn("vm1"):
        with turns.turn("vm1"):  # reentrant: a power reset inside a firmware apply
            done.append("again")
        in_thread(other_domain).join(30)
    assert done == ["again", "vm2"]


@pytest.fixture
def two_hosts(postgres_url: str) -> Iterator[tuple[SqlStore, SqlStore]]:
    first, second = open_store(postgres_url), open_store(postgres_url)
    yield first, second
    first.dispose()
    second.dispose()


def turn_waiters(store: SqlStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.scalar(text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            " AND classid = :kind"), {"kind": TURN_LOCK_CLASS}) or 0)


def test_a_host_waits_for_the_turn_another_host_holds(
        two_hosts: tuple[SqlStore, SqlStore]) -> None:
    first, second = two_hosts
    entered = threading.Event()

    def other_host() -> None:
        with second.turns.turn("vm1"):
            entered.set()

    with first.turns.turn("vm1"):
        thread = in_thread(other_host)
        wait_for(lambda: turn_waiters(first) == 1, "the other host waiting for the turn")
        assert not entered.is_set()
    thread.join(30)
    assert entered.is_set() and turn_waiters(first) == 0


def test_a_deadlock_between_hosts_is_retried_until_both_commit(
        two_hosts: tuple[SqlStore, SqlStore]) -> None:
    first, second = two_hosts
    with first.unit_of_work() as uow:
        for name in ("a", "b"):
            uow.domains.add(DomainState(name, 1, {}), T0)
        uow.commit()
    both_hold_one = threading.Barrier(2)
    attempts: list[str] = []
    errors: list[BaseException] = []

    def cross(store: SqlStore, mine: str, theirs: str) -> Callable[[], None]:
        def unit() -> None:
            attempts.append(mine)
            with store.unit_of_work() as uow:
                uow.domains.get(mine, for_update=True)
                if attempts.count(mine) == 1:
                    both_hold_one.wait(30)
                uow.domains.get(theirs, for_update=True)
                uow.commit()

        def run() -> None:
            try:
                retry_conflicts(unit)
            except BaseException as exc:
                errors.append(exc)
        return run

    threads = [in_thread(cross(first, "a", "b")), in_thread(cross(second, "b", "a"))]
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert sorted(attempts) in (["a", "a", "b"], ["a", "b", "b"])  # one lost, ran again


def test_conflicts_beyond_the_bound_reach_the_caller() -> None:
    runs: list[int] = []

    def always() -> None:
        runs.append(1)
        raise StoreConflict("the state store is unavailable")

    with pytest.raises(StoreConflict):
        retry_conflicts(always, attempts=3, sleep=lambda _: None)
    assert len(runs) == 3


def test_settings_writers_hold_the_registry_shared_and_an_apply_waits(
        postgres_url: str) -> None:
    store = open_store(postgres_url)
    try:
        with store.unit_of_work() as uow:
            uow.records.put("attribute_registry", "digest", T0)
            uow.commit()
        with store.unit_of_work() as writer, store.unit_of_work() as other_writer:
            writer.records.hold_shared("attribute_registry")
            other_writer.records.hold_shared("attribute_registry")  # passes: shared
            with store.engine.connect() as apply, apply.begin():
                apply.execute(text("SET LOCAL lock_timeout = '50ms'"))
                with pytest.raises(Exception, match="lock timeout") as waited:
                    apply.execute(text("SELECT key FROM host_records WHERE"
                                       " key = 'attribute_registry' FOR UPDATE"))
                assert isinstance(waited.value.__cause__ or waited.value.orig,  # type: ignore[attr-defined]
                                  psycopg.errors.LockNotAvailable)
    finally:
        store.dispose()
