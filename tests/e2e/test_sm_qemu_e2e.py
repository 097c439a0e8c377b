"""System-management requests on real QEMU + OVMF guests through a real `vbios serve`: the
SMBIOS tables the guest's firmware shows (read by the EFI probe, tests/efi/probe.c) are
the domain's, a wake alarm powers a stopped guest on (LastResetCause RTCWakeup), and a
watchdog the guest does not pet resets it (LastResetCause Watchdog). Real QEMU tests run
one at a time (marker ``qemu``)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import ServerProcess, init_home, stop_dev_tpm
from tests.e2e.test_firmware_e2e import BOOT_MARK, Boots, Firmware, create
from tests.efi_probe import build_probe, disk_dir, smbios_shown
from tests.qemu_support import kill_all
from tests.waiting import wait_for

pytestmark = pytest.mark.qemu

SERVE = ("--workers", "1", "--graceful-timeout", "3")
LIMIT = 120.0


@pytest.fixture(scope="module")
def fw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firmware]:
    work = tmp_path_factory.mktemp("sm-qemu-e2e")
    probe = build_probe(work / "probe")
    home = work / "home"
    server = ServerProcess(home=home, work=work)
    try:
        init_home(home)
        server.start(*SERVE)
        yield Firmware(server, probe, disk_dir(work / "signed", probe.signed),
                       disk_dir(work / "unsigned", probe.unsigned))
    finally:
        server.stop()
        left = kill_all(home / "machines")
        stop_dev_tpm(home)
    assert left == [], f"keepers or QEMUs left running: {left}"


def test_the_guest_sees_the_domains_smbios_tables(fw: Firmware) -> None:
    client = create(fw, "smq1", fw.signed)
    boots = Boots(fw, "smq1")
    client.reset("On")
    report, _ = boots.probe()
    tables = client.get_smbios()
    assert report.bios_version == tables.bios_version == "vbios-1"
    assert (report.sys_manufacturer, report.sys_product, report.sys_serial) == (
        smbios_shown(tables.manufacturer), smbios_shown(tables.product_name),
        tables.serial_number)
    assert report.sys_uuid == tables.uuid
    assert tables.serial_number.startswith("VM-") and tables.product_name == (
        "Virtual Trusted Runtime BIOS")
    client.reset("ForceOff")


def test_a_wake_alarm_powers_a_stopped_guest_on(fw: Firmware) -> None:
    client = create(fw, "smq2", fw.signed)
    boots = Boots(fw, "smq2")
    assert client.get_power_state().power_state == "Off"
    client.set_wake_alarm(datetime.now(UTC) + timedelta(seconds=3))
    text = boots.next(lambda t: b"VBIOS-PROBE-END" in t, "the boot the alarm started")
    assert text.startswith(BOOT_MARK + b"RTCWakeup)")
    assert client.get_power_state().last_reset_cause == "RTCWakeup"
    assert client.get_wake_alarm() is None
    keys = [e.message_id for e in client.get_system_event_log().entries]
    assert "VbiosSel.1.0.WakeAlarm" in keys
    client.reset("ForceOff")


def test_a_watchdog_resets_a_guest_that_does_not_pet_it(fw: Firmware) -> None:
    client = create(fw, "smq3", fw.signed)
    boots = Boots(fw, "smq3")
    client.reset("On")
    boots.probe()
    wait_for(lambda: client.get_power_state().power_state == "On", "On", LIMIT)
    client.set_watchdog(True, timeout_seconds=10)  # the probe's firmware never pets it
    text = boots.next(lambda t: b"VBIOS-PROBE-END" in t, "the boot after the watchdog's reset")
    assert text.startswith(BOOT_MARK + b"Watchdog)")
    client.set_watchdog(False)
    state = client.get_power_state()
    assert state.last_reset_cause == "Watchdog"
    assert client.get_watchdog().expirations >= 1
    entries = client.get_system_event_log().entries
    assert any(e.message_id == "VbiosSel.1.0.WatchdogExpired" for e in entries)
    assert any(e.message_args == ("PoweringOn", "Watchdog") or e.message_args == (
        "On", "Watchdog") for e in entries)
    client.reset("ForceOff")
