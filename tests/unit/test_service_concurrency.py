"""Concurrent writers over the in-memory store: compare-and-set, no lost update."""

from __future__ import annotations

import threading

from bios_ws.domain.audit_limit import summarized_count
from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.principal import Principal
from bios_ws.errors import VersionConflict
from bios_ws.service.bios import BiosService

GUEST = Principal.guest("vm1")


def _run(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive()


def test_same_expected_version_exactly_one_wins(bios: BiosService, store: MemoryStore) -> None:
    writers = 8
    barrier = threading.Barrier(writers)
    won: list[int] = []
    lost: list[VersionConflict] = []
    errors: list[BaseException] = []

    def write(value: int) -> None:
        barrier.wait()
        try:
            won.append(bios.set_attributes(GUEST, {"Counter": value}, expected_version=1))
        except VersionConflict as exc:
            lost.append(exc)
        except BaseException as exc:  # surfaced below: a thread must not swallow it
            errors.append(exc)

    _run([threading.Thread(target=write, args=(n + 1,)) for n in range(writers)])
    assert errors == []
    assert won == [2]
    assert len(lost) == writers - 1
    state = store.domains["vm1"][0]
    assert state.version == 2
    assert 1 <= int(state.current["Counter"]) <= writers
    outcomes = [e.outcome for e in store.audit if e.operation == "SetAttributes"]
    assert sorted(outcomes) == ["ok"] + ["refused:VersionConflict"] * (writers - 1)


def test_retrying_writers_lose_no_update(bios: BiosService, store: MemoryStore) -> None:
    threads_count, increments = 6, 15
    conflicts = [0]
    errors: list[BaseException] = []
    lock = threading.Lock()

    def increment_many() -> None:
        try:
            for _ in range(increments):
                while True:
                    view = bios.get_attributes(GUEST, ["Counter"])
                    value = int(view.values["Counter"])
                    try:
                        bios.set_attributes(
                            GUEST, {"Counter": value + 1}, expected_version=view.version
                        )
                        break
                    except VersionConflict:
                        with lock:
                            conflicts[0] += 1
        except BaseException as exc:
            errors.append(exc)

    _run([threading.Thread(target=increment_many) for _ in range(threads_count)])
    assert errors == []
    total = threads_count * increments
    state = store.domains["vm1"][0]
    assert state.current["Counter"] == total
    assert state.version == 1 + total
    # every conflict is audited: a row each up to the refusal limit, counted beyond it
    refused = sum(e.outcome == "refused:VersionConflict" for e in store.audit)
    summarized = sum(summarized_count(e.outcome) or 0 for e in store.audit)
    counted = sum(window.counted for window in store.refusals.values())
    assert refused + summarized + counted == conflicts[0]


def test_writers_without_expected_version_serialize(bios: BiosService, store: MemoryStore) -> None:
    per_thread, threads_count = 20, 5

    def toggle(seed: int) -> None:
        for n in range(per_thread):
            bios.set_attributes(GUEST, {"Counter": seed * 1000 + n + 1})  # never the default

    _run([threading.Thread(target=toggle, args=(t,)) for t in range(threads_count)])
    assert store.domains["vm1"][0].version == 1 + per_thread * threads_count
    oks = [e for e in store.audit if e.operation == "SetAttributes" and e.outcome == "ok"]
    assert len(oks) == per_thread * threads_count
