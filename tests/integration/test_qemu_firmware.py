"""The BIOS settings reach a real OVMF: boot plans carried out by QemuPlatform's keepers on
QEMU + OVMF guests under TCG, seen on the serial console (the boot manager's ``BdsDxe:``
lines and the EFI probe's line) and in what ``after_run`` hears.

Every test boots real firmware (4 to 9 s a boot), one machine at a time. The plans reach
the keeper through ``tests.qemu_plan_hooks`` (``plans.json`` in the machine directory).
Each test's machines live under its tmp_path; its teardown kills, pid by pid, whatever
keeper or QEMU still runs for them, and fails if there was any.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bios_ws.config import PlatformOptions
from bios_ws.domain.firmware import (
    BootDevice,
    BootEntry,
    BootPlan,
    FirmwareImage,
    KeyDatabases,
    MachineOptions,
    SlotBoot,
)
from bios_ws.domain.firmware_update import Slot
from bios_ws.domain.power import PowerState, ResetCause
from bios_ws.errors import MachineError
from bios_ws.home import Home
from bios_ws.platform.port import NetworkBoot, TrialOutcome
from bios_ws.platform.qemu import QemuPlatform
from tests.efi_probe import Probe, ProbeReport, build_probe, disk_dir, parse_probe_lines
from tests.qemu_plan_hooks import FACTORY, FAIL_AFTER_RUN, PlanRecorder, write_plans
from tests.qemu_support import kill_all, processes_of
from tests.waiting import wait_for

pytestmark = pytest.mark.qemu

REPO = Path(__file__).resolve().parents[2]
DOMAIN = "fw1"
BOOT_LIMIT = 90.0
OPTIONS = PlatformOptions(graceful_timeout=3.0, watchdog_interval=0.5, hang_timeout=15.0)
#: The boot manager reaching the end of the order. Its "loading" line, not any line with
#: the description: the QEMU of the boot before may still print its "starting" line
#: (and its menu) after a test marked the console for the next boot.
END = 'BdsDxe: loading BootFFFF "Boot Manager Menu (end of the boot order)"'
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
_ATTEMPT = re.compile(r'BdsDxe: (loading|failed to load) Boot([0-9A-F]{4}) "([^"]*)"')
_FAILED = re.compile(r'BdsDxe: failed to (?:load|start) Boot([0-9A-F]{4}) "[^"]*" from \S+: '
                     r"([A-Za-z ]+)")


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Probe:
    return build_probe(tmp_path_factory.mktemp("efi-probe"))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # keepers import tests.qemu_plan_hooks
    home = Home.create(tmp_path / "home")
    yield home
    left = kill_all(home.machines_dir)
    assert left == [], f"processes left running for {home.machines_dir}: {left}"


@pytest.fixture
def platform(home: Home) -> Iterator[QemuPlatform]:
    platform = QemuPlatform(home.machines_dir, OPTIONS, hooks_factory=FACTORY)
    platform.create(DOMAIN)
    yield platform
    platform.remove(DOMAIN)


def entry(number: int, device: BootDevice, description: str, **more: object) -> BootEntry:
    return BootEntry(number, f"option{number}", description, device,
                     **more)  # type: ignore[arg-type]


NO_KEYS = KeyDatabases()


def plan(entries: tuple[BootEntry, ...], order: tuple[int, ...], *, boot_next: int | None = None,
         secure_boot: bool = False, keys: KeyDatabases = NO_KEYS, published: bytes = b"",
         **machine: object) -> BootPlan:
    image = FirmwareImage(entries, order, boot_next, secure_boot, keys, published)
    return BootPlan(image, MachineOptions(**{"nic": False, **machine}))  # type: ignore[arg-type]


class Console:
    """The machine's serial console, read from where the current boot began."""

    def __init__(self, platform: QemuPlatform) -> None:
        self.platform = platform
        self.start = 0

    def raw(self) -> bytes:
        return self.platform.console(DOMAIN, limit=1 << 24)

    def mark(self) -> None:
        self.start = len(self.raw())

    def text(self) -> str:
        return _ESCAPES.sub("", self.raw()[self.start:].decode("ascii", "replace"))

    def wait(self, what: str, limit: float = BOOT_LIMIT) -> str:
        wait_for(lambda: what in self.text(), f"{what!r} on the console", limit, 0.05)
        return self.text()

    def attempts(self) -> list[tuple[int, str]]:
        """(entry number, description) of every boot attempt, in order."""
        return [(int(number, 16), description)
                for verb, number, description in _ATTEMPT.findall(self.text())]

    def failures(self) -> dict[int, str]:
        return {int(number, 16): why.strip() for number, why in _FAILED.findall(self.text())}

    def reports(self) -> list[ProbeReport]:
        return parse_probe_lines(self.raw()[self.start:])


def boot(platform: QemuPlatform, console: Console, *, restart: bool = False) -> str:
    """Boot (or hard-restart) the machine and wait until its boot order has run out."""
    console.mark()
    if restart:
        platform.restart(DOMAIN, ResetCause.MANAGEMENT_COMMAND, graceful=False)
    else:
        platform.power_on(DOMAIN, ResetCause.MANAGEMENT_COMMAND)
    return console.wait(END)


def off(platform: QemuPlatform) -> None:
    platform.power_off(DOMAIN, ResetCause.MANAGEMENT_COMMAND, graceful=False)
    assert platform.status(DOMAIN) is PowerState.OFF


# -- the boot order ------------------------------------------------------------------------


def test_the_boot_order_runs_as_given_boot_next_once_then_reversed(
    platform: QemuPlatform, home: Home, probe: Probe
) -> None:
    platform.attach_disk(DOMAIN, disk_dir(home.path, probe.unsigned))
    entries = (entry(1, BootDevice.DISK, "vbios first: the disk"),
               entry(2, BootDevice.CDROM, "vbios second: the CD-ROM"),
               entry(3, BootDevice.PXE, "vbios third: no NIC"),
               entry(4, BootDevice.HTTP, "vbios next: once", uri="http://10.0.2.2/x.efi"))
    first = plan(entries, (1, 2, 3), boot_next=4, published=b"the published attributes")
    write_plans(home.machines_dir / DOMAIN, first, replace(
        first, firmware=replace(first.firmware, order=(3, 2, 1), boot_next=None)))
    console = Console(platform)

    boot(platform, console)
    assert console.attempts() == [
        (4, "vbios next: once"), (1, "vbios first: the disk"), (2, "vbios second: the CD-ROM"),
        (3, "vbios third: no NIC"), (0xFFFF, "Boot Manager Menu (end of the boot order)")]
    assert console.failures() == {4: "Not Found", 1: "Aborted", 2: "Not Found", 3: "Not Found"}
    [report] = console.reports()
    assert report.boot_current == 1
    assert report.boot_order is not None and report.boot_order[:4] == (1, 2, 3, 0xFFFF)
    assert report.attributes == b"the published attributes"
    assert (report.secure_boot, report.setup_mode, report.cpus) == (0, 1, 1)
    assert "Start PXE" not in console.text()  # no NIC, no network attempt

    boot(platform, console, restart=True)
    recorded = PlanRecorder(home.machines_dir)
    [state] = recorded.states
    assert state.boot_next is None  # consumed by the firmware
    assert state.boot_order == (1, 2, 3)  # OVMF's own entries left out
    assert [number for number, _ in console.attempts()] == [3, 2, 1, 0xFFFF], (
        console.start, len(console.raw()), console.text())
    assert [r.boot_current for r in console.reports()] == [1]
    assert (home.machines_dir / DOMAIN / "vars.prev.fd").is_file()
    assert [cause for _, cause in recorded.boots] == [ResetCause.MANAGEMENT_COMMAND] * 2
    off(platform)


def test_a_disk_entry_fails_fast_without_its_disk_and_no_nic_means_no_network(
    platform: QemuPlatform, home: Home, probe: Probe, tmp_path: Path
) -> None:
    gone = disk_dir(tmp_path, probe.unsigned)
    platform.attach_disk(DOMAIN, gone)
    shutil.rmtree(gone)
    entries = (entry(7, BootDevice.DISK, "disk that is not there"),
               entry(8, BootDevice.PXE, "pxe without a NIC"),
               entry(9, BootDevice.HTTP, "http without a NIC", uri="http://10.0.2.2/x.efi"))
    write_plans(home.machines_dir / DOMAIN, plan(entries, (7, 8, 9)))
    console = Console(platform)
    console.mark()
    platform.power_on(DOMAIN, ResetCause.MANAGEMENT_COMMAND)
    console.wait("disk that is not there")
    started = time.monotonic()
    text = console.wait(END, 10)
    assert time.monotonic() - started < 3.0
    assert f"vbios: disk {gone} skipped" in text
    assert console.failures() == {7: "Not Found", 8: "Not Found", 9: "Not Found"}
    assert not re.search(r"PXE|HTTP Boot|Station IP", text)
    off(platform)


# -- the network ---------------------------------------------------------------------------


def test_pxe_boots_from_tftp_then_fails_fast_without_it_and_http_boots(
    platform: QemuPlatform, home: Home, probe: Probe, tmp_path: Path
) -> None:
    tftp, web = tmp_path / "tftp", tmp_path / "web"
    for directory in (tftp, web):
        directory.mkdir()
        shutil.copyfile(probe.unsigned, directory / "probe.efi")
    platform.set_network_boot(DOMAIN, NetworkBoot(tftp, "probe.efi", web))
    uri = "http://10.0.2.100/probe.efi"  # the machine's own HTTP boot server (httpboot)
    pxe = entry(1, BootDevice.PXE, "network boot")
    http = entry(2, BootDevice.HTTP, "http boot", uri=uri)
    write_plans(home.machines_dir / DOMAIN, plan((pxe, http), (1,), nic=True, cpus=2),
                plan((pxe, http), (1, 2), nic=True))
    console = Console(platform)
    text = boot(platform, console)
    assert "NBP filename is probe.efi" in text
    assert "NBP file downloaded successfully" in text
    [report] = console.reports()
    assert (report.boot_current, report.cpus) == (1, 2)
    assert console.attempts()[0] == (1, "network boot")
    assert not re.search(r"IPv6|HTTP Boot", text)  # only what the plan asked for

    platform.set_network_boot(DOMAIN, NetworkBoot(http=web))  # no TFTP any more
    console.mark()
    platform.restart(DOMAIN, ResetCause.MANAGEMENT_COMMAND, graceful=False)
    console.wait(">>Start PXE over IPv4")
    started = time.monotonic()
    console.wait(">>Start HTTP Boot over IPv4", 30)
    failed = time.monotonic() - started
    print(f"a PXE attempt without a boot server failed in {failed:.1f} s")
    assert failed < 10.0
    text = console.wait(END)
    assert "TFTP error" in text and f"URI: {uri}" in text
    assert console.failures() == {1: "Not Found", 2: "Aborted"}
    assert [r.boot_current for r in console.reports()] == [2]
    off(platform)


# -- Secure Boot ---------------------------------------------------------------------------


def test_secure_boot_enforced_switched_off_and_keys_deleted(
    platform: QemuPlatform, home: Home, probe: Probe
) -> None:
    platform.attach_disk(DOMAIN, disk_dir(home.path, probe.signed))
    entries = (entry(1, BootDevice.DISK, "signed probe"),
               entry(2, BootDevice.SHELL, "built-in shell"))
    keys = KeyDatabases(pk=(probe.snakeoil_cert_der,), kek=(probe.snakeoil_cert_der,),
                        db=(probe.snakeoil_cert_der,))
    enforcing = plan(entries, (1, 2), secure_boot=True, keys=keys)
    switched_off = plan(entries, (1, 2), secure_boot=False, keys=keys)
    no_keys = plan(entries, (1, 2), secure_boot=True)
    write_plans(home.machines_dir / DOMAIN, enforcing, switched_off, no_keys,
                replace(no_keys, machine=replace(no_keys.machine, serial=False)))
    console = Console(platform)

    boot(platform, console)
    [report] = console.reports()
    assert (report.secure_boot, report.setup_mode) == (1, 0)
    assert console.failures() == {1: "Aborted", 2: "Security Violation"}

    console.mark()
    platform.restart(DOMAIN, ResetCause.MANAGEMENT_COMMAND, graceful=False)
    console.wait("UEFI Interactive Shell")
    [report] = console.reports()
    assert (report.secure_boot, report.setup_mode) == (0, 0)

    console.mark()
    platform.restart(DOMAIN, ResetCause.MANAGEMENT_COMMAND, graceful=False)
    console.wait("UEFI Interactive Shell")
    [report] = console.reports()
    assert (report.secure_boot, report.setup_mode) == (0, 1)  # no PK: setup mode

    platform.restart(DOMAIN, ResetCause.MANAGEMENT_COMMAND, graceful=False)  # serial off
    time.sleep(0.5)  # what the QEMU before printed last has reached the log
    console.mark()
    states = PlanRecorder(home.machines_dir).states
    assert [(s.secure_boot_enable, s.keys.setup_mode) for s in states] == [
        (True, False), (False, False), (True, True)]
    assert states[0].keys == keys and states[2].keys == KeyDatabases()
    time.sleep(7.5)  # long enough for the firmware to reach its boot order
    assert platform.status(DOMAIN) is PowerState.ON
    assert console.text() == ""
    qemu = platform.qemu_pid(DOMAIN)
    assert qemu is not None and qemu in processes_of(home.machines_dir)
    off(platform)


# -- refusals ------------------------------------------------------------------------------


def test_a_malformed_plan_refuses_the_boot_and_leaves_the_store(
    platform: QemuPlatform, home: Home
) -> None:
    machine = home.machines_dir / DOMAIN
    before = (machine / "vars.fd").read_bytes()
    write_plans(machine, plan((entry(1, BootDevice.DISK, "disk"),), (1, 2)))
    with pytest.raises(MachineError, match="boot plan refused"):
        platform.power_on(DOMAIN, ResetCause.MANAGEMENT_COMMAND)
    assert platform.status(DOMAIN) is PowerState.OFF
    assert (machine / "vars.fd").read_bytes() == before
    assert not (machine / "vars.prev.fd").exists()
    assert "boot plan refused" in platform.console(DOMAIN).decode()


def test_a_failing_after_run_refuses_the_boot_and_is_tried_again_at_the_next(
    platform: QemuPlatform, home: Home
) -> None:
    machine = home.machines_dir / DOMAIN
    write_plans(machine, plan((entry(1, BootDevice.CDROM, "cd"),), (1,)))
    platform.power_on(DOMAIN, ResetCause.MANAGEMENT_COMMAND)
    off(platform)
    assert (machine / "vars.booted").exists()  # the firmware ran on the store
    (machine / FAIL_AFTER_RUN).touch()
    before = (machine / "vars.fd").read_bytes()
    with pytest.raises(MachineError, match="after_run failed: RuntimeError"):
        platform.power_on(DOMAIN, ResetCause.MANAGEMENT_COMMAND)
    assert platform.status(DOMAIN) is PowerState.OFF
    assert (machine / "vars.fd").read_bytes() == before
    assert (machine / "vars.booted").exists()
    (machine / FAIL_AFTER_RUN).unlink()
    platform.power_on(DOMAIN, ResetCause.MANAGEMENT_COMMAND)
    [state] = PlanRecorder(home.machines_dir).states
    assert state.boot_order == (1,)
    assert len(PlanRecorder(home.machines_dir).boots) == 2  # before_boot not asked when refused
    off(platform)


# -- firmware slots --------------------------------------------------------------------------


def test_a_staged_slot_boots_on_trial_and_shows_its_bios_version(
    platform: QemuPlatform, home: Home, probe: Probe
) -> None:
    """A copy of the installation's OVMF code as the "new image" in slot B, tried with the
    BIOS version vbios-7 and the serial console off in the plan: the probe reads vbios-7
    from SMBIOS type 0, and after_trial hears that the slot booted."""
    image = OPTIONS.ovmf_code.read_bytes()
    assert platform.stage_firmware(DOMAIN, Slot.B, image) == hashlib.sha256(image).hexdigest()
    platform.attach_disk(DOMAIN, disk_dir(home.path, probe.unsigned))
    trial = plan((entry(1, BootDevice.DISK, "the probe"),), (1,), serial=False)
    write_plans(home.machines_dir / DOMAIN,
                replace(trial, slot=SlotBoot(Slot.B, "vbios-7", trial=True)))
    console = Console(platform)
    started = time.monotonic()
    boot(platform, console)
    print(f"the trial boot reached the end of its boot order in"
          f" {time.monotonic() - started:.1f} s")
    [report] = console.reports()
    assert report.bios_version == "vbios-7"
    recorded = PlanRecorder(home.machines_dir)
    assert recorded.trials == [(DOMAIN, TrialOutcome(Slot.B, True))]
    assert len(recorded.boots) == 1 and recorded.events == []
    assert "trial boot of firmware slot B (vbios-7)" in console.text()
    assert not (home.machines_dir / DOMAIN / "vars.trial.fd").exists()
    off(platform)
