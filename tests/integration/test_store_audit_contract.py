"""The audit contract (visibility, numbering, refusal windows) on the SQLite and PostgreSQL
stores, and worker processes (or hosts) sharing one refusal limit through it."""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.domain.audit import verify_chain
from bios_ws.domain.audit_limit import DEFAULT_REFUSAL_LIMIT, summarized_count
from bios_ws.service.audit import audit_refusal, summarize_refusals
from bios_ws.store import SqlStore, open_store
from tests.audit_contract import T0, AuditContract, record


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'vbios.db'}"


class TestSqlAudit(AuditContract):
    @pytest.fixture
    def store(self, sql_url: str) -> Iterator[SqlStore]:
        store = open_store(sql_url)
        yield store
        store.dispose()


def refuse_in_process(url: str, principal: str, times: int) -> None:
    """Runs in a spawned process (a gunicorn worker's place): its own store, its own engine."""
    store = open_store(url)
    try:
        for _ in range(times):
            audit_refusal(store.unit_of_work, record(principal, None, "refused:AccessDenied"))
    finally:
        store.dispose()


def test_worker_processes_on_one_store_share_the_refusal_limit(sql_url: str) -> None:
    url = sql_url
    open_store(url).dispose()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(3) as pool:
        pool.starmap_async(refuse_in_process, [(url, "guest:vm2", 100)] * 3).get(timeout=120)
    store = open_store(url)
    try:
        with store.unit_of_work() as uow:
            assert len(list(uow.audit.entries())) == DEFAULT_REFUSAL_LIMIT.threshold
            assert [w.counted for w in uow.refusals.windows()] == [
                300 - DEFAULT_REFUSAL_LIMIT.threshold]
        assert summarize_refusals(store.unit_of_work,
                                  T0 + DEFAULT_REFUSAL_LIMIT.window) == 1
        with store.unit_of_work() as uow:
            log = list(uow.audit.entries())
        assert verify_chain(log) is None
        assert summarized_count(log[-1].outcome) == 300 - DEFAULT_REFUSAL_LIMIT.threshold
    finally:
        store.dispose()
