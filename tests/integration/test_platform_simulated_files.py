"""The simulated machine passes the platform contract with its state in files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.platform.simulated import FileShelf
from tests.platform_contract import (
    Machines,
    PlatformContract,
    created_domain,
    simulated_machines,
)


class TestOnFiles(PlatformContract):
    @pytest.fixture
    def machines(self, tmp_path: Path) -> Iterator[Machines]:
        yield from simulated_machines(FileShelf(tmp_path))

    @pytest.fixture
    def domain_id(self, machines: Machines) -> Iterator[str]:
        yield from created_domain(machines)
