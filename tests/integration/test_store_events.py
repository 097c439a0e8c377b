"""The event log on SQLite and in memory alike (one contract, the shared ``store``
fixture): ids, reads after a cursor by scope and type, marks, retention, retired
domains, subscriptions; then what only SQLite shows: events survive a restart, writers of
several stores on one file never let a reader skip an event, damaged rows."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bios_ws.domain.events import (
    ADMIN_ONLY,
    HOST_WIDE,
    RETIRED,
    EventFilter,
    EventRecord,
    EventType,
    Subscription,
    make_event,
)
from bios_ws.errors import StoreUnavailable
from bios_ws.store import open_store

T0 = datetime(2026, 11, 1, 12, 0, 0, 654321, tzinfo=UTC)
EVERY = EventFilter(None)
VM1 = EventFilter(frozenset({"vm1", HOST_WIDE}))


def record(domain_id: str | None = "vm1", kind: EventType = EventType.SETTINGS_CHANGED,
           at: datetime = T0, *, admin_only: bool = False) -> EventRecord:
    args: dict[EventType, tuple[object, ...]] = {
        EventType.SETTINGS_CHANGED: (domain_id, "SetAttributes", 2),
        EventType.POWER_STATE_CHANGED: (domain_id, "On", "Off", "PowerButton"),
        EventType.INTEGRITY_CHANGED: ("entered", "PCR 0 differs"),
        EventType.CREDENTIAL_REVOKED: ("4D2", "admin", "superseded"),
    }
    return make_event(kind, *args[kind], domain_id=domain_id, origin="/vbios/test", at=at,
                      admin_only=admin_only)


def append(store: Any, *records: EventRecord) -> list[int]:
    with store.unit_of_work() as uow:
        ids = [uow.events.append(r).event_id for r in records]
        uow.commit()
    return ids


def read(store: Any, how: Any) -> Any:
    with store.unit_of_work() as uow:
        return how(uow.events)


def ids(page: Any) -> list[int]:
    return [event.event_id for event in page.events]


# -- appending and reading ----------------------------------------------------------------

def test_ids_start_at_one_and_grow_and_an_event_reads_back_whole(store: Any) -> None:
    assert read(store, lambda ev: (ev.head(), ev.pruned_through())) == (0, 0)
    first = record("vm1", EventType.POWER_STATE_CHANGED)
    assert append(store, first, record(None, EventType.INTEGRITY_CHANGED)) == [1, 2]
    assert append(store, record("vm2")) == [3]
    page = read(store, lambda ev: ev.after(0, EVERY, 10))
    assert ids(page) == [1, 2, 3] and page.next_cursor == page.head == 3
    assert page.events[0].record == first  # every field, the time in UTC


def test_a_rolled_back_append_is_never_seen(store: Any) -> None:
    append(store, record())
    with store.unit_of_work() as uow:
        uow.events.append(record())
    assert read(store, lambda ev: ids(ev.after(0, EVERY, 10))) == [1]
    # the next id is larger (PostgreSQL's sequence does not give back the rolled-back one)
    [next_id] = append(store, record())
    assert next_id > 1
    assert read(store, lambda ev: ids(ev.after(0, EVERY, 10))) == [1, next_id]


def test_a_reader_sees_its_scopes_and_types_in_id_order(store: Any) -> None:
    append(store, record("vm1"), record("vm2"), record(None, EventType.INTEGRITY_CHANGED),
           record("vm1", EventType.POWER_STATE_CHANGED),
           record(None, EventType.CREDENTIAL_REVOKED, admin_only=True), record("vm2"))
    assert read(store, lambda ev: ids(ev.after(0, VM1, 10))) == [1, 3, 4]
    assert read(store, lambda ev: ids(ev.after(1, VM1, 10))) == [3, 4]
    power = EventFilter(frozenset({"vm1", HOST_WIDE}),
                        frozenset({EventType.POWER_STATE_CHANGED}))
    assert read(store, lambda ev: ids(ev.after(0, power, 10))) == [4]
    admin_vm2 = EventFilter(frozenset({"vm2", HOST_WIDE, ADMIN_ONLY}))
    assert read(store, lambda ev: ids(ev.after(0, admin_vm2, 10))) == [2, 3, 5, 6]
    page = read(store, lambda ev: ev.after(0, power, 10))
    assert page.next_cursor == 6  # every event up to the newest was looked at


def test_a_full_page_leaves_the_cursor_at_its_last_event(store: Any) -> None:
    append(store, *(record("vm1" if n % 2 == 0 else "vm2") for n in range(10)))
    page = read(store, lambda ev: ev.after(0, VM1, 3))
    assert ids(page) == [1, 3, 5] and page.next_cursor == 5
    rest = read(store, lambda ev: ev.after(5, VM1, 3))
    assert ids(rest) == [7, 9] and rest.next_cursor == 10


def test_a_type_found_far_after_many_others_is_found(store: Any) -> None:
    append(store, *(record() for _ in range(1200)), record(kind=EventType.POWER_STATE_CHANGED))
    power = EventFilter(None, frozenset({EventType.POWER_STATE_CHANGED}))
    page = read(store, lambda ev: ev.after(0, power, 5))
    assert ids(page) == [1201] and page.next_cursor == 1201


def test_marks_say_scope_and_type_of_the_events_after_a_cursor(store: Any) -> None:
    append(store, record("vm1"), record(None, EventType.INTEGRITY_CHANGED), record("vm2"))
    marks = read(store, lambda ev: ev.marks_after(1, 10))
    assert [(m.event_id, m.scope, m.event_type) for m in marks] == [
        (2, HOST_WIDE, EventType.INTEGRITY_CHANGED), (3, "vm2", EventType.SETTINGS_CHANGED)]
    assert read(store, lambda ev: len(ev.marks_after(0, 2))) == 2
    assert read(store, lambda ev: ev.marks_after(3, 10)) == []


# -- retention and retired domains --------------------------------------------------------

def test_prune_keeps_the_newest_events_and_marks_what_it_removed(store: Any) -> None:
    append(store, *(record() for _ in range(5)))
    with store.unit_of_work() as uow:
        assert uow.events.prune(T0 - timedelta(days=1), keep=2) == 3
        uow.commit()
    assert read(store, lambda ev: ids(ev.after(0, EVERY, 10))) == [4, 5]
    assert read(store, lambda ev: (ev.head(), ev.pruned_through())) == (5, 3)


def test_prune_removes_what_is_too_old_and_the_head_stays_when_nothing_is_left(
        store: Any) -> None:
    append(store, record(at=T0), record(at=T0 + timedelta(hours=1)))
    with store.unit_of_work() as uow:
        assert uow.events.prune(T0 + timedelta(minutes=1), keep=100) == 1
        uow.commit()
    assert read(store, lambda ev: ids(ev.after(0, EVERY, 10))) == [2]
    with store.unit_of_work() as uow:
        assert uow.events.prune(T0 + timedelta(days=1), keep=100) == 1
        assert uow.events.prune(T0 + timedelta(days=1), keep=100) == 0
        uow.commit()
    assert read(store, lambda ev: (ev.head(), ev.pruned_through())) == (2, 2)
    assert read(store, lambda ev: ev.after(0, EVERY, 10).next_cursor) == 2
    assert append(store, record()) == [3]  # an id is never given again


def test_a_retired_domains_events_are_the_admins_alone_and_its_subscriptions_end(
        store: Any) -> None:
    append(store, record("vm1"), record("vm2"), record(None, EventType.INTEGRITY_CHANGED))
    with store.unit_of_work() as uow:
        uow.events.add_subscription(subscription("a" * 32, "vm1"))
        uow.events.add_subscription(subscription("b" * 32, "vm2"))
        uow.events.add_subscription(subscription("c" * 32, None, owner="admin:admin"))
        uow.events.retire_domain("vm1")
        uow.commit()
    assert read(store, lambda ev: ids(ev.after(0, VM1, 10))) == [3]
    assert read(store, lambda ev: ids(ev.after(0, EVERY, 10))) == [1, 2, 3]
    assert read(store, lambda ev: ev.marks_after(0, 1)[0].scope) == RETIRED
    left = read(store, lambda ev: [s.subscription_id for s in ev.subscriptions()])
    assert left == ["b" * 32, "c" * 32]


# -- subscriptions ------------------------------------------------------------------------

def subscription(key: str, domain_id: str | None = "vm1", *, owner: str = "guest:vm1",
                 created: datetime = T0, life: timedelta = timedelta(hours=1),
                 types: frozenset[EventType] = frozenset()) -> Subscription:
    return Subscription(key, owner, domain_id, types, created, created + life, 42)


def test_a_subscription_round_trips_is_renewed_and_removed(store: Any) -> None:
    mine = subscription("a" * 32, types=frozenset({EventType.SETTINGS_CHANGED,
                                                   EventType.POWER_STATE_CHANGED}))
    with store.unit_of_work() as uow:
        uow.events.add_subscription(mine)
        with pytest.raises(ValueError):
            uow.events.add_subscription(mine)
        uow.commit()
    assert read(store, lambda ev: ev.subscription("a" * 32)) == mine
    assert read(store, lambda ev: ev.subscription("b" * 32)) is None
    renewed = dataclasses.replace(mine, expires_at=T0 + timedelta(days=1))
    with store.unit_of_work() as uow:
        assert uow.events.save_subscription(renewed) is True
        assert uow.events.save_subscription(subscription("b" * 32)) is False
        uow.commit()
    assert read(store, lambda ev: ev.subscription("a" * 32)) == renewed
    with store.unit_of_work() as uow:
        assert uow.events.remove_subscription("a" * 32) is True
        assert uow.events.remove_subscription("a" * 32) is False
        uow.commit()
    assert read(store, lambda ev: ev.subscriptions()) == []


def test_expired_subscriptions_are_removed_and_the_rest_listed_oldest_first(
        store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.events.add_subscription(subscription("b" * 32, created=T0))
        uow.events.add_subscription(subscription("a" * 32, None, owner="admin:admin",
                                                 created=T0 - timedelta(hours=2)))
        uow.events.add_subscription(subscription("c" * 32, created=T0 - timedelta(hours=1),
                                                 life=timedelta(days=1)))
        uow.commit()
    assert read(store, lambda ev: [s.subscription_id[0] for s in ev.subscriptions()]) == [
        "a", "c", "b"]
    with store.unit_of_work() as uow:
        assert uow.events.remove_subscriptions_expired(T0 + timedelta(minutes=30)) == 1
        uow.commit()
    assert read(store, lambda ev: [s.subscription_id[0] for s in ev.subscriptions()]) == [
        "c", "b"]


# -- SQLite only ------------------------------------------------------------------------

def test_events_and_subscriptions_survive_a_restart(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'vbios.db'}"
    first = open_store(url)
    append(first, record("vm1"), record("vm2"))
    with first.unit_of_work() as uow:
        uow.events.add_subscription(subscription("a" * 32))
        uow.commit()
    first.dispose()
    again = open_store(url)
    try:
        assert read(again, lambda ev: ids(ev.after(0, EVERY, 10))) == [1, 2]
        assert read(again, lambda ev: ev.subscription("a" * 32)) is not None
        assert append(again, record()) == [3]
    finally:
        again.dispose()


def test_writers_of_several_stores_never_let_a_reader_skip_an_event(tmp_path: Path) -> None:
    """Four stores on one file (as four processes), each with a writer thread appending
    events in units of one to three; a reader follows its cursor meanwhile: it reads every
    event exactly once, in id order, and ids are 1..N without a hole."""
    url = f"sqlite:///{tmp_path / 'vbios.db'}"
    stores = [open_store(url) for _ in range(5)]
    writers, per_writer = 4, 40
    total = writers * per_writer * 3  # three events an iteration, in two units
    seen: list[int] = []
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(per_writer):
                append(stores[n], *(record(f"vm{n}") for _ in range(1 + i % 3)))
                append(stores[n], *(record(f"vm{n}") for _ in range(2 - i % 3)))
        except BaseException as exc:
            failures.append(exc)

    def reader() -> None:
        cursor = 0
        try:
            while len(seen) < total and not failures:
                page = read(stores[4], lambda ev, c=cursor: ev.after(c, EVERY, 7))
                seen.extend(ids(page))
                cursor = page.next_cursor
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    threads.append(threading.Thread(target=reader))
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        for store in stores:
            store.dispose()
    assert not failures
    assert seen == list(range(1, total + 1))


def test_a_damaged_event_or_subscription_is_store_unavailable(tmp_path: Path) -> None:
    db = tmp_path / "vbios.db"
    store = open_store(f"sqlite:///{db}")
    try:
        append(store, record(), record())
        with store.unit_of_work() as uow:
            uow.events.add_subscription(subscription("a" * 32))
            uow.commit()
        raw = sqlite3.connect(db)
        raw.execute("UPDATE events SET message_args = '{}' WHERE event_id = 2")
        raw.execute("UPDATE event_subscriptions SET event_types = 'Nope'")
        raw.commit()
        raw.close()
        assert read(store, lambda ev: ids(ev.after(0, EVERY, 1))) == [1]
        with pytest.raises(StoreUnavailable, match="event 2"):
            read(store, lambda ev: ev.after(1, EVERY, 1))
        with pytest.raises(StoreUnavailable, match="subscription"):
            read(store, lambda ev: ev.subscription("a" * 32))
    finally:
        store.dispose()
