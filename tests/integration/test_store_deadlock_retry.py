"""On a real PostgreSQL: a settings write that the server aborts in a deadlock (SQLSTATE
40P01) with a concurrent unit of work runs again (``ports.retrying``), and both commit,
each once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from bios_ws.domain.audit import AuditRecord
from bios_ws.domain.ports import (
    UnitOfWork,
    retrying,
)
from bios_ws.domain.principal import Principal
from bios_ws.domain.state import DomainState
from bios_ws.service.bios import BiosService
from bios_ws.soap.testing import sample_registry
from bios_ws.store import SqlStore, open_store
from tests.waiting import wait_for

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[SqlStore]:
    store = open_store(postgres_url)
    yield store
    store.dispose()


def lock_waiters(store: SqlStore) -> int:
    """Backends of this database waiting for a lock now."""
    with store.engine.connect() as conn:
        return int(conn.scalar(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'")) or 0)


def test_a_settings_write_aborted_by_a_deadlock_runs_again_and_both_commit(
        pg_store: SqlStore, retries: list[int]) -> None:
    registry = sample_registry()
    with pg_store.unit_of_work() as uow:
        uow.domains.add(DomainState.new("vm1", registry), T0)
        uow.commit()
    bios = BiosService(pg_store.unit_of_work, registry, lambda: T0)
    before = bios.get_attributes(Principal.guest("vm1")).version
    holding_audit = threading.Event()
    other_runs: list[int] = []
    errors: list[BaseException] = []

    def other(uow: UnitOfWork) -> None:
        """Takes the audit log's lock, then (once the write waits for it) the domain's
        row, which the write holds: the cycle PostgreSQL breaks by aborting the write,
        whose wait began first (its deadlock_timeout ends first)."""
        other_runs.append(1)
        uow.audit.append(AuditRecord(T0, "admin:other", "OtherWrite", "vm1", "ok", ""))
        if len(other_runs) == 1:
            holding_audit.set()
            wait_for(lambda: lock_waiters(pg_store) >= 1, "the write waiting for the audit lock",
                     every=0.01)
        state = uow.domains.get("vm1", for_update=True)
        state.version += 1
        uow.domains.save(state, expected_version=state.version - 1)
        uow.commit()

    def run_other() -> None:
        try:
            retrying(pg_store.unit_of_work, other)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run_other, daemon=True)
    thread.start()
    assert holding_audit.wait(30)
    version = bios.set_attributes(Principal.guest("vm1"), {"AssetTag": "rack-1"})
    thread.join(60)

    assert errors == []
    assert other_runs == [1]  # the other unit won: it ran once
    assert retries == [2]  # the write lost once and ran again
    assert version == before + 2  # after the other's commit, on what it committed
    view = bios.get_attributes(Principal.guest("vm1"))
    assert view.version == before + 2
    assert view.values["AssetTag"] == "rack-1"
    with pg_store.unit_of_work() as uow:
        entries = [(e.operation, e.outcome) for e in uow.audit.entries()]
    assert entries == [("OtherWrite", "ok"), ("SetAttributes", "ok")]  # each once
