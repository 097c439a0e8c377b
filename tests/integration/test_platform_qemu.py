"""Real QEMU + OVMF guests under TCG: the platform contract, and what only a real guest does.

Every test boots real firmware (4 to 9 s under TCG on this machine kind), so the
file runs its tests one at a time. Each test's machines live under its tmp_path;
its teardown kills, pid by pid, whatever keeper or QEMU still runs for them, and
fails if there was any.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bios_ws.config import PlatformOptions
from bios_ws.domain.firmware_update import Slot
from bios_ws.domain.power import PowerState, ResetCause
from bios_ws.errors import MachineError, PlatformUnavailable
from bios_ws.home import Home
from bios_ws.platform.port import MAX_FAILED_TRIALS
from bios_ws.platform.qemu import QemuPlatform
from bios_ws.platform.qemu.layout import process_argv
from tests.platform_contract import (
    Machines,
    PlatformContract,
    booted,
    good_image,
    slot_plan,
    wait_state,
)
from tests.qemu_plan_hooks import FACTORY, PlanRecorder
from tests.qemu_support import alive, kill_all, processes_of, shell_disk
from tests.waiting import wait_for

pytestmark = pytest.mark.qemu

REPO = Path(__file__).resolve().parents[2]
GRACEFUL = 3.0
#: Two guests booting at once on 2 cores take about 12 s each: be generous.
BOOT_LIMIT = 90.0
DOMAIN = "q1"
#: A good image reaches its first boot attempt in 4 to 9 s (12.5 s with two guests booting);
#: a bad one spins until the trial timeout.
TRIAL_TIMEOUT = 25.0
OPTIONS = PlatformOptions(graceful_timeout=GRACEFUL, watchdog_interval=0.5, hang_timeout=15.0,
                          firmware_trial_timeout=TRIAL_TIMEOUT)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # keepers import tests.qemu_plan_hooks
    home = Home.create(tmp_path / "home")
    yield home
    left = kill_all(home.machines_dir)
    assert left == [], f"processes left running for {home.machines_dir}: {left}"


def platform_on(home: Home, **options: object) -> QemuPlatform:
    return QemuPlatform(home.machines_dir, replace(OPTIONS, **options),
                        hooks_factory=FACTORY)


@pytest.fixture
def machines(home: Home) -> Machines:
    return Machines(platform_on(home), PlanRecorder(home.machines_dir),
                    boot_limit=BOOT_LIMIT, graceful_timeout=GRACEFUL)


@pytest.fixture
def domain_id(machines: Machines) -> Iterator[str]:
    machines.platform.create(DOMAIN)
    yield DOMAIN
    machines.platform.remove(DOMAIN)


class TestQemu(PlatformContract):
    """The whole contract, on real guests."""


def _qemu(machines: Machines) -> QemuPlatform:
    assert isinstance(machines.platform, QemuPlatform)
    return machines.platform


def _logs(home: Home) -> str:
    machine = home.machines_dir / DOMAIN
    return "".join(path.read_text(errors="replace") for path in sorted(machine.glob("*.log*")))


def _events(machines: Machines) -> list[tuple[PowerState, ResetCause]]:
    return [(event.state, event.cause) for _, event in machines.recorded.events]


# -- guests acting on their own ---------------------------------------------------------


def test_a_guest_that_shuts_itself_down_is_off(
    machines: Machines, domain_id: str, tmp_path: Path
) -> None:
    platform = _qemu(machines)
    platform.attach_directory_disk(domain_id, shell_disk(tmp_path / "disk", "reset -s"))
    assert platform.directory_disks(domain_id) == [tmp_path / "disk"]
    booted(machines, domain_id)
    wait_state(machines, domain_id, PowerState.OFF, BOOT_LIMIT)
    assert _events(machines) == [(PowerState.OFF, ResetCause.GUEST_SHUTDOWN)]
    wait_for(lambda: platform.keeper_pid(domain_id) is None, "keeper gone", 15)


def test_a_guest_that_resets_itself_boots_a_new_qemu(
    machines: Machines, domain_id: str, tmp_path: Path
) -> None:
    platform = _qemu(machines)
    platform.attach_directory_disk(domain_id, shell_disk(tmp_path / "disk", "reset"))
    booted(machines, domain_id)
    first = platform.qemu_pid(domain_id)
    wait_for(lambda: (PowerState.ON, ResetCause.GUEST_RESET) in _events(machines),
             "reset by the guest", BOOT_LIMIT)
    assert [c for _, c in machines.recorded.boots][:2] == [
        ResetCause.MANAGEMENT_COMMAND, ResetCause.GUEST_RESET]
    assert platform.status(domain_id) in (PowerState.ON, PowerState.POWERING_ON)
    second = platform.qemu_pid(domain_id)
    assert first is not None and second is not None and second != first
    assert not alive(first)
    platform.power_off(domain_id, ResetCause.MANAGEMENT_COMMAND, graceful=False)
    assert platform.status(domain_id) is PowerState.OFF


# -- deaths ----------------------------------------------------------------------------------


def test_qemu_killed_from_outside_is_a_crash(
    machines: Machines, domain_id: str, home: Home
) -> None:
    platform = _qemu(machines)
    booted(machines, domain_id)
    qemu, keeper = platform.qemu_pid(domain_id), platform.keeper_pid(domain_id)
    assert qemu is not None and keeper is not None
    os.kill(qemu, signal.SIGKILL)
    wait_state(machines, domain_id, PowerState.OFF, 30)
    assert _events(machines) == [(PowerState.OFF, ResetCause.CRASH)]
    wait_for(lambda: not alive(keeper), "keeper gone", 15)
    assert "Traceback" not in _logs(home)
    assert "Traceback" not in platform.console(domain_id).decode(errors="replace")


def test_a_killed_keeper_takes_its_qemu_along(
    machines: Machines, domain_id: str, home: Home
) -> None:
    platform = _qemu(machines)
    booted(machines, domain_id)
    qemu, keeper = platform.qemu_pid(domain_id), platform.keeper_pid(domain_id)
    assert qemu is not None and keeper is not None
    os.kill(keeper, signal.SIGKILL)
    wait_for(lambda: not alive(qemu), "QEMU gone with its keeper", 15)
    assert platform.status(domain_id) is PowerState.OFF
    assert processes_of(home.machines_dir) == []
    booted(machines, domain_id)  # a stale pid file and socket do not stand in the way


def test_the_watchdog_kills_a_guest_that_stops_answering(home: Home) -> None:
    platform = platform_on(home, hang_timeout=3.0)
    machines = Machines(platform, PlanRecorder(home.machines_dir),
                        boot_limit=BOOT_LIMIT, graceful_timeout=GRACEFUL)
    platform.create(DOMAIN)
    booted(machines, DOMAIN)
    qemu = platform.qemu_pid(DOMAIN)
    assert qemu is not None
    os.kill(qemu, signal.SIGSTOP)
    wait_state(machines, DOMAIN, PowerState.OFF, 30)
    assert _events(machines) == [(PowerState.OFF, ResetCause.WATCHDOG)]
    assert not alive(qemu)
    assert "watchdog" in platform.console(DOMAIN).decode(errors="replace")
    platform.remove(DOMAIN)


def test_a_terminated_keeper_turns_its_machine_off_and_cleans_up(
    machines: Machines, domain_id: str, home: Home
) -> None:
    platform = _qemu(machines)
    booted(machines, domain_id)
    qemu, keeper = platform.qemu_pid(domain_id), platform.keeper_pid(domain_id)
    assert qemu is not None and keeper is not None
    os.kill(keeper, signal.SIGTERM)
    wait_for(lambda: not alive(keeper) and not alive(qemu), "keeper and QEMU gone", 15)
    assert platform.status(domain_id) is PowerState.OFF
    assert machines.recorded.events == []  # stopped on purpose, like a hard off
    machine = home.machines_dir / domain_id
    assert not (machine / "keeper.pid").exists()
    assert not platform.machine(domain_id).keeper_socket.exists()


# -- refusals -----------------------------------------------------------------------------------


def test_a_damaged_store_is_refused_and_the_good_copy_kept(
    machines: Machines, domain_id: str, home: Home
) -> None:
    platform = _qemu(machines)
    machine = home.machines_dir / domain_id
    good = (machine / "vars.good.fd").read_bytes()
    damaged = bytearray((machine / "vars.fd").read_bytes())
    damaged[40:44] = b"XXXX"
    (machine / "vars.fd").write_bytes(bytes(damaged))
    with pytest.raises(MachineError) as refused:
        platform.power_on(domain_id, ResetCause.MANAGEMENT_COMMAND)
    assert str(machine / "vars.fd") in str(refused.value)
    assert "vars.good.fd" in str(refused.value)
    assert (machine / "vars.good.fd").read_bytes() == good
    assert platform.status(domain_id) is PowerState.OFF
    assert machines.recorded.boots == [] and machines.recorded.events == []


def test_machine_files_are_private_and_one_machine_boots_once(
    machines: Machines, domain_id: str, home: Home
) -> None:
    platform = _qemu(machines)
    booted(machines, domain_id)
    machine = home.machines_dir / domain_id
    assert machine.stat().st_mode & 0o777 == 0o700
    for path in (machine / "vars.fd", machine / "vars.good.fd", machine / "machine.json",
                 platform.machine(domain_id).keeper_socket, machine / "console.log"):
        assert path.stat().st_mode & 0o777 == 0o600, path
    with pytest.raises(MachineError, match="already running"):
        platform.power_on(domain_id, ResetCause.MANAGEMENT_COMMAND)
    assert len(machines.recorded.boots) == 1
    with pytest.raises(MachineError, match="already exists"):
        platform.create(domain_id)


@pytest.mark.parametrize(("option", "value", "package"), [
    ("qemu_binary", "/nonexistent/qemu-system-x86_64", "qemu-system-x86"),
    ("qemu_binary", "no-such-qemu-system-x86_64", "qemu-system-x86"),
    ("ovmf_code", Path("/nonexistent/OVMF_CODE_4M.fd"), "ovmf"),
    ("ovmf_vars", Path("/nonexistent/OVMF_VARS_4M.fd"), "ovmf"),
])
def test_missing_software_is_named_with_its_package(
    home: Home, option: str, value: object, package: str
) -> None:
    platform = platform_on(home, **{option: value})
    for attempt in (platform.check_available, lambda: platform.create(DOMAIN)):
        with pytest.raises(PlatformUnavailable) as missing:
            attempt()
        message = str(missing.value)
        assert "\n" not in message
        assert f"apt-get install {package}" in message
    assert not (home.machines_dir / DOMAIN / "machine.json").exists()


# -- the console -----------------------------------------------------------------------------


def test_the_console_shows_the_boot_manager(machines: Machines, domain_id: str) -> None:
    booted(machines, domain_id)
    wait_for(lambda: b"BdsDxe: loading" in machines.platform.console(domain_id),
             "the boot manager on the console", BOOT_LIMIT)


def test_the_console_rotates_within_its_budget(home: Home) -> None:
    platform = platform_on(home, console_bytes=1024)
    machines = Machines(platform, PlanRecorder(home.machines_dir),
                        boot_limit=BOOT_LIMIT, graceful_timeout=GRACEFUL)
    platform.create(DOMAIN)
    booted(machines, DOMAIN)
    log = home.machines_dir / DOMAIN / "console.log"
    wait_for(lambda: log.with_name("console.log.1").exists(), "rotated", BOOT_LIMIT)
    for path in (log, log.with_name("console.log.1")):
        assert path.stat().st_size <= 512
    assert 0 < len(platform.console(DOMAIN, limit=1 << 20)) <= 1024
    assert len(platform.console(DOMAIN, limit=100)) == 100
    platform.remove(DOMAIN)


# -- firmware slots: what only a real QEMU does (no real boot: QEMU refuses the image) ----------


def test_a_code_image_of_the_wrong_size_fails_its_trial_and_the_previous_slot_boots(
    machines: Machines, domain_id: str, home: Home
) -> None:
    platform = _qemu(machines)
    platform.stage_firmware(domain_id, Slot.B, good_image()[:-4096 + 1])  # not whole pages
    machines.recorded.give_plans(domain_id, slot_plan(Slot.B, trial=True),
                                 slot_plan(Slot.A, trial=False, version="vbios-1"))
    platform.power_on(domain_id, ResetCause.MANAGEMENT_COMMAND)
    [(_, outcome)] = machines.recorded.trials
    assert (outcome.slot, outcome.booted) == (Slot.B, False)
    assert "QEMU would not start" in outcome.reason and "size" in outcome.reason
    assert platform.status(domain_id) is PowerState.ON
    qemu = platform.qemu_pid(domain_id)
    assert qemu is not None
    argv = process_argv(qemu)
    assert f"if=pflash,format=raw,unit=0,readonly=on,file={OPTIONS.ovmf_code}" in argv
    assert "type=0,version=vbios-1" in argv
    assert [cause for _, cause in machines.recorded.boots] == [ResetCause.MANAGEMENT_COMMAND] * 2
    console = platform.console(domain_id).decode(errors="replace")
    assert "vbios: trial boot of firmware slot B (vbios-2)" in console
    assert "vbios: trial boot of firmware slot B failed: QEMU would not start" in console
    platform.power_off(domain_id, ResetCause.MANAGEMENT_COMMAND, graceful=False)
    assert machines.recorded.events == []
    assert "Traceback" not in _logs(home)


def test_trials_failing_in_a_row_turn_the_machine_off(
    machines: Machines, domain_id: str, home: Home
) -> None:
    platform = _qemu(machines)
    platform.stage_firmware(domain_id, Slot.B, b"\xff" * (8 << 20))  # over 8 MiB with vars
    machines.recorded.give_plans(domain_id, slot_plan(Slot.B, trial=True))  # again and again
    with pytest.raises(MachineError, match=f"{MAX_FAILED_TRIALS} trial boots failed in a row"):
        platform.power_on(domain_id, ResetCause.MANAGEMENT_COMMAND)
    assert platform.status(domain_id) is PowerState.OFF
    assert [(o.slot, o.booted) for _, o in machines.recorded.trials] == [
        (Slot.B, False)] * MAX_FAILED_TRIALS
    assert len(machines.recorded.boots) == MAX_FAILED_TRIALS
    assert _events(machines) == [(PowerState.OFF, ResetCause.CRASH)]
    assert "Traceback" not in _logs(home)
    machine = home.machines_dir / domain_id
    assert (machine / "firmware-B.fd").is_file()
    platform.remove(domain_id)
    assert not machine.exists()
