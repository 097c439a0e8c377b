"""Fixtures of the integration tier shared by several modules."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bios_ws.domain.fakes import MemoryStore
from bios_ws.store import open_store
from tests.cli_support import home, run  # noqa: F401 (fixtures: `vbios` in-process, a home)


@pytest.fixture(params=["sqlite", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A state store for a repository contract: SQLite in ``tmp_path``, then the
    in-memory fake (a module with a store of its own defines its own ``store``)."""
    if request.param == "memory":
        yield MemoryStore()
        return
    sql = open_store(f"sqlite:///{tmp_path / 'vbios.db'}")
    yield sql
    sql.dispose()
