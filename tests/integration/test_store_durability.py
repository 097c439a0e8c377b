"""Acknowledged writes are synced to disk (``store.durability``): a write is reported only
after an fsync of the WAL that began after its commit, and concurrent writers share syncs."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.domain.principal import Principal
from bios_ws.domain.state import ApplyTime
from bios_ws.errors import StoreUnavailable
from bios_ws.store import SqlStore, durability, open_store
from tests.integration.test_store_concurrency import DOMAIN, GUEST, services
from tests.threads import run_in_threads

WRITERS = 8
WRITES_EACH = 25


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = open_store(f"sqlite:///{tmp_path / 'vbios.db'}")
    services(s)[1].create(Principal.admin(), DOMAIN)
    yield s
    s.dispose()


class SyncLog:
    """Wraps ``os.fsync`` in the durability module: which files, and the commits each
    sync covered (the commit count when it began)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        self.lock = threading.Lock()
        real = os.fsync

        def fsync(fd: int) -> None:
            with self.lock:
                self.calls.append(os.readlink(f"/proc/self/fd/{fd}"))
            real(fd)

        monkeypatch.setattr(durability.os, "fsync", fsync)


def test_a_write_returns_only_after_the_wal_was_synced_past_its_commit(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    syncs = SyncLog(monkeypatch)
    bios = services(store)[0]
    bios.set_attributes(GUEST, {"Counter": 1}, ApplyTime.ON_RESET)
    assert syncs.calls and syncs.calls[-1].endswith("vbios.db-wal")
    before = len(syncs.calls)
    bios.get_attributes(GUEST)  # a read syncs nothing
    assert len(syncs.calls) == before


def test_concurrent_writers_share_syncs_and_none_returns_before_one_covering_it(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    syncs = SyncLog(monkeypatch)
    original_wait = durability.WalSync.wait_durable
    unsynced: list[int] = []

    def checked_wait(self: durability.WalSync, ticket: int) -> None:
        original_wait(self, ticket)
        if self._synced < ticket:
            unsynced.append(ticket)

    monkeypatch.setattr(durability.WalSync, "wait_durable", checked_wait)
    bios = services(store)[0]
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(WRITES_EACH):
                bios.set_attributes(GUEST, {"Counter": (n * 100 + i) % 1000},
                                    ApplyTime.ON_RESET)
        except BaseException as exc:
            errors.append(exc)

    run_in_threads(writer, WRITERS)
    assert errors == [] and unsynced == []
    writes = WRITERS * WRITES_EACH
    assert 0 < len(syncs.calls) < writes  # group commit: fewer syncs than writes


def test_a_failing_sync_is_a_store_error_not_an_acknowledged_write(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(durability.os, "fsync", failing)
    with pytest.raises(StoreUnavailable, match="cannot be synced"):
        services(store)[0].set_attributes(GUEST, {"Counter": 7}, ApplyTime.ON_RESET)


def test_the_database_file_is_never_closed_under_sqlite(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """Closing any descriptor of the database file drops SQLite's POSIX locks on it in
    this process: another process could then take the WAL away from under it."""
    closed: list[str] = []
    real_close = os.close

    def close(fd: int) -> None:
        closed.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_close(fd)

    monkeypatch.setattr(durability.os, "close", close)
    bios = services(store)[0]
    bios.set_attributes(GUEST, {"Counter": 1}, ApplyTime.ON_RESET)
    (tmp_path / "vbios.db-wal").unlink()  # as if SQLite had replaced it: the database is synced
    bios.set_attributes(GUEST, {"Counter": 2}, ApplyTime.ON_RESET)
    store.dispose()
    assert not [path for path in closed if path.endswith("vbios.db")]
