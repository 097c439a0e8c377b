"""The simulated machine passes the platform contract (in memory)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bios_ws.platform.simulated import SimulatedPlatform, StateShelf, Ticker
from tests.platform_contract import Machines, PlatformContract, RecordingHooks

BOOT = 0.1
GRACEFUL = 0.3


@pytest.fixture
def domain_id(machines: Machines) -> Iterator[str]:
    machines.platform.create("sim1")
    yield "sim1"
    machines.platform.remove("sim1")


class TestInMemory(PlatformContract):
    @pytest.fixture
    def machines(self) -> Iterator[Machines]:
        recorded = RecordingHooks()
        platform = SimulatedPlatform(StateShelf(), recorded.hooks(), boot_seconds=BOOT,
                                     graceful_timeout=GRACEFUL)
        ticker = Ticker(platform, interval=0.02).start()
        yield Machines(platform, recorded, boot_limit=5.0, graceful_timeout=GRACEFUL)
        ticker.stop()
