"""BiosService over SqlStore under concurrent writers: threads, then processes, on SQLite
and on PostgreSQL (where the processes stand for hosts sharing the store)."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.domain.audit import verify_chain
from bios_ws.domain.principal import Principal
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.domain.state import ApplyTime
from bios_ws.errors import VersionConflict
from bios_ws.platform.simulated import in_memory_machines
from bios_ws.service.bios import BiosService
from bios_ws.service.domains import DomainService
from bios_ws.store import SqlStore, open_store

DOMAIN = "guest-1"
GUEST = Principal.guest(DOMAIN)


def registry() -> AttributeRegistry:
    return AttributeRegistry.from_dict(
        {
            "registry_version": "test-1",
            "attributes": [
                {"name": "Counter", "type": "Integer", "default": 0,
                 "lower_bound": 0, "upper_bound": 1_000_000},
                {"name": "SecureBoot", "type": "Boolean", "default": True},
                {"name": "AssetTag", "type": "String", "default": "", "max_length": 32},
                {"name": "SetupPassword", "type": "Password"},
            ],
        }
    )


def services(store: SqlStore) -> tuple[BiosService, DomainService]:
    reg = registry()
    return BiosService(store.unit_of_work, reg), DomainService(store.unit_of_work, reg,
        in_memory_machines())


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'vbios.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database without schema yet."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("empty_postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'fresh.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    s = open_store(db_url)
    services(s)[1].create(Principal.admin(), DOMAIN)
    yield s
    s.dispose()


def increment(bios: BiosService, times: int) -> list[int]:
    """Read-modify-write Counter ``times`` times, retrying on VersionConflict."""
    versions: list[int] = []
    for _ in range(times):
        while True:
            view = bios.get_attributes(GUEST, ["Counter"])
            counter = view.values["Counter"]
            assert isinstance(counter, int)
            try:
                versions.append(bios.set_attributes(
                    GUEST, {"Counter": counter + 1}, ApplyTime.IMMEDIATE,
                    expected_version=view.version,
                ))
                break
            except VersionConflict:
                continue
    return versions


def increment_in_process(url: str, times: int) -> list[int]:
    """Runs in a spawned process: its own store, its own engine."""
    store = open_store(url)
    try:
        return increment(services(store)[0], times)
    finally:
        store.dispose()


def check_outcome(store: SqlStore, per_worker: list[list[int]], total: int) -> None:
    bios = services(store)[0]
    view = bios.get_attributes(GUEST)
    assert view.values["Counter"] == total
    assert view.version == 1 + total
    for versions in per_worker:
        assert versions == sorted(set(versions))  # strictly increasing in each worker
    assert sorted(v for vs in per_worker for v in vs) == list(range(2, total + 2))
    with store.unit_of_work() as uow:
        log = list(uow.audit.entries())
    assert verify_chain(log) is None
    assert sum(e.outcome == "ok" and e.operation == "SetAttributes" for e in log) == total


def test_same_expected_version_exactly_one_wins(store: SqlStore) -> None:
    bios = services(store)[0]
    barrier = threading.Barrier(2)
    results: list[object] = []
    lock = threading.Lock()

    def write(tag: str) -> None:
        barrier.wait()
        try:
            outcome: object = bios.set_attributes(
                GUEST, {"AssetTag": tag}, ApplyTime.IMMEDIATE, expected_version=1
            )
        except VersionConflict as exc:
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=write, args=(t,)) for t in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert sorted(type(r).__name__ for r in results) == ["VersionConflict", "int"]
    assert [r for r in results if isinstance(r, int)] == [2]
    view = bios.get_attributes(GUEST, ["AssetTag"])
    assert view.version == 2 and view.values["AssetTag"] in ("one", "two")
    with store.unit_of_work() as uow:
        outcomes = [e.outcome for e in uow.audit.entries() if e.operation == "SetAttributes"]
    assert sorted(outcomes) == ["ok", "refused:VersionConflict"]


def test_eight_threads_lose_no_update(store: SqlStore) -> None:
    bios = services(store)[0]
    per_thread: list[list[int]] = [[] for _ in range(8)]
    errors: list[BaseException] = []

    def run(slot: int) -> None:
        try:
            per_thread[slot] = increment(bios, 10)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    check_outcome(store, per_thread, 80)
    assert store.engine.pool.checkedout() <= 1  # type: ignore[attr-defined]  # this thread keeps one


def test_three_processes_lose_no_update(store: SqlStore, db_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        per_process = pool.starmap_async(increment_in_process, [(db_url, 10)] * 3).get(
            timeout=180
        )
    check_outcome(store, per_process, 30)


def open_and_report(url: str) -> int:
    store = open_store(url)
    try:
        return store.schema_version()
    finally:
        store.dispose()


def test_processes_open_a_fresh_store_together(fresh_url: str) -> None:
    url = fresh_url
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        versions = pool.map_async(open_and_report, [url] * 4).get(timeout=120)
    assert len(set(versions)) == 1
    again = open_store(url)
    try:
        with again.engine.connect() as conn:
            keys = conn.exec_driver_sql("SELECT key FROM meta ORDER BY key").scalars().all()
        assert keys == ["audit_lock", "schema_version"]
    finally:
        again.dispose()
