"""The QEMU platform's answers when a machine's keeper exits in the middle of a request.

No QEMU runs here: the keeper's pid file and socket are what the platform consults,
and the race is replayed by a keeper that is alive at the first look and gone at the next.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.bootstrap import KEEPER_HOOKS
from bios_ws.config import PlatformOptions
from bios_ws.domain.power import ResetCause
from bios_ws.errors import MachineError
from bios_ws.platform.qemu import QemuPlatform
from bios_ws.platform.qemu.layout import MachineDir

DOMAIN = "q1"


def _keeper_seen(monkeypatch: pytest.MonkeyPatch, looks: int) -> None:
    """The keeper answers ``looks`` liveness checks with a pid, then has exited."""
    pids: Iterator[int] = iter([4242] * looks)
    monkeypatch.setattr(MachineDir, "live_keeper", lambda self: next(pids, None))


@pytest.fixture
def platform(tmp_path: Path) -> QemuPlatform:
    (tmp_path / "machines" / DOMAIN).mkdir(parents=True)
    machine = MachineDir(tmp_path / "machines", DOMAIN)
    machine.save(machine.new_config())  # a machine without firmware: no OVMF needed
    return QemuPlatform(tmp_path / "machines", PlatformOptions(), hooks_factory=KEEPER_HOOKS)


@pytest.mark.parametrize("graceful", [False, True])
def test_power_off_of_a_machine_whose_keeper_exits_meanwhile_is_done(
    platform: QemuPlatform, monkeypatch: pytest.MonkeyPatch, graceful: bool
) -> None:
    _keeper_seen(monkeypatch, looks=1)  # alive at the check, gone by the request
    platform.power_off(DOMAIN, ResetCause.MANAGEMENT_COMMAND, graceful=graceful)


def test_remove_of_a_machine_whose_keeper_exits_meanwhile_removes_it(
    platform: QemuPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    _keeper_seen(monkeypatch, looks=1)
    platform.remove(DOMAIN)
    assert not (platform.machines_dir / DOMAIN).exists()


def test_other_requests_to_a_machine_whose_keeper_has_gone_say_it_is_off(
    platform: QemuPlatform, monkeypatch: pytest.MonkeyPatch
) -> None:
    _keeper_seen(monkeypatch, looks=0)
    with pytest.raises(MachineError, match="cannot pause: the machine q1 is Off"):
        platform.pause(DOMAIN)
