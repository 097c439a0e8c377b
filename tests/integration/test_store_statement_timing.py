"""The store's statements timed on a real SQLite engine: each statement is observed once
under its kind, a failing one too (and leaves no start time behind), and none once the
metrics are closed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

from bios_ws.server.metrics import ServerMetrics


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    built = create_engine(f"sqlite:///{tmp_path / 'timed.db'}")
    yield built
    built.dispose()


def statement_counts(metrics: ServerMetrics) -> dict[str, float]:
    prefix = 'vbios_store_statement_duration_seconds_count{statement="'
    return {line[len(prefix):].split('"')[0]: float(line.split()[-1])
            for line in metrics.exposition().decode().splitlines()
            if line.startswith(prefix)}


def test_every_statement_is_timed_by_its_kind_failing_ones_included(engine: Engine) -> None:
    metrics = ServerMetrics()
    metrics.time_store_statements()
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
            conn.execute(text("SELECT x FROM t")).all()
            with pytest.raises(OperationalError):
                conn.execute(text("SELECT x FROM missing"))
            assert not conn.info.get("vbios_statement_started")  # nothing left behind
    finally:
        metrics.close()
    with engine.begin() as conn:  # no longer timed
        conn.execute(text("SELECT 1"))
    assert statement_counts(metrics) == {"other": 1.0, "insert": 1.0, "select": 2.0}
