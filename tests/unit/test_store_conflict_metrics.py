"""The workers count the units of work they run again (``vbios_store_conflict_retries``)."""

from __future__ import annotations

from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.ports import UnitOfWork, retrying
from bios_ws.server.metrics import ServerMetrics

SAMPLE = "vbios_store_conflict_retries_total"


def _count(metrics: ServerMetrics) -> float:
    for line in metrics.exposition().decode().splitlines():
        if line.startswith(SAMPLE + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {SAMPLE} sample")


def _commit(uow: UnitOfWork) -> None:
    uow.commit()


def test_each_retry_is_counted_while_the_worker_counts() -> None:
    metrics = ServerMetrics()
    store = MemoryStore()
    metrics.time_store_statements()
    try:
        store.lose_commits(2)
        retrying(store.unit_of_work, _commit, sleep=lambda _: None)
        assert _count(metrics) == 2.0
    finally:
        metrics.close()
    store.lose_commits(1)
    retrying(store.unit_of_work, _commit, sleep=lambda _: None)
    assert _count(metrics) == 2.0  # closed: no longer listening
