"""The simulated machine passes the platform contract (in memory)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bios_ws.platform.simulated import StateShelf
from tests.platform_contract import (
    Machines,
    PlatformContract,
    created_domain,
    simulated_machines,
)


class TestInMemory(PlatformContract):
    @pytest.fixture
    def machines(self) -> Iterator[Machines]:
        yield from simulated_machines(StateShelf())

    @pytest.fixture
    def domain_id(self, machines: Machines) -> Iterator[str]:
        yield from created_domain(machines)
