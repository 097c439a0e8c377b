"""The simulated machine passes the platform contract with its state in files."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.domain.firmware_update import Slot
from bios_ws.platform.port import NO_HOOKS
from bios_ws.platform.simulated import FileShelf, SimulatedPlatform
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


def test_slot_images_are_private_files_beside_the_state(tmp_path: Path) -> None:
    platform = SimulatedPlatform(FileShelf(tmp_path), NO_HOOKS)
    platform.create("s1")
    image = b"\x5a" * 8192
    digest = platform.stage_firmware("s1", Slot.B, image)
    path = tmp_path / "s1" / "firmware-B.fd"
    assert path.read_bytes() == image and path.stat().st_mode & 0o777 == 0o600
    assert digest == hashlib.sha256(image).hexdigest()
    assert not (tmp_path / "s1" / "firmware-A.fd").exists()
    assert [p.name for p in (tmp_path / "s1").iterdir() if p.name.endswith(".tmp")] == []
    other = SimulatedPlatform(FileShelf(tmp_path), NO_HOOKS)  # another worker process
    assert other.firmware_digest("s1", Slot.B) == digest
    path.write_bytes(b"changed behind its back")
    assert other.firmware_digest("s1", Slot.B) == hashlib.sha256(
        b"changed behind its back").hexdigest()
    platform.remove("s1")
    assert not (tmp_path / "s1").exists()
