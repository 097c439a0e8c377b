"""Fixtures of the integration tier shared by several modules."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bios_ws.domain.fakes import MemoryStore
from bios_ws.store import open_store
from tests.cli_support import home, run  # noqa: F401 (fixtures: `vbios` in-process, a home)
from tests.postgres_support import (  # noqa: F401 (fixtures: the session's PostgreSQL)
    empty_postgres_url,
    postgres_server,
    postgres_url,
)


@pytest.fixture(params=["sqlite", "memory", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A state store for a repository contract: SQLite in ``tmp_path``, the in-memory
    fake, then a database of the test's own on the session's PostgreSQL (a module with
    a store of its own defines its own ``store``)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'vbios.db'}"
    sql = open_store(url)
    yield sql
    sql.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database without schema: a new SQLite file, or an empty PostgreSQL database."""
    if request.param == "postgresql":
        yield request.getfixturevalue("empty_postgres_url")
    else:
        yield f"sqlite:///{tmp_path / 'vbios.db'}"
