"""BIOS settings seen by a real OVMF firmware, through a real `vbios serve` over mutual TLS.

Each domain boots a small EFI probe (tests/efi/probe.c) from a read-only FAT disk;
the probe prints what the firmware holds (SecureBoot, SetupMode, BootCurrent,
BootOrder, the vCPUs and the published attributes) on the serial console, which
the tests read. The installation's default Secure Boot keys are Debian's
snakeoil test set, so the probe signed with it runs under Secure Boot and the
unsigned one is refused. Run one at a time (marker ``qemu``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import vbios_client as vc

from tests import waiting
from tests.e2e.conftest import ServerProcess, init_home, run_vbios, stop_dev_tpm
from tests.efi_probe import Probe, ProbeReport, build_probe, disk_dir, parse_probe_lines
from tests.qemu_support import kill_all

pytestmark = pytest.mark.qemu

SERVE = ("--workers", "2", "--graceful-timeout", "3")
BOOT_LIMIT = 120.0
ATTEMPT = re.compile(rb'BdsDxe: (?:loading|failed to load) (Boot[0-9A-F]{4}) "([^"]*)"')


@dataclass
class Firmware:
    server: ServerProcess
    probe: Probe
    signed: Path
    unsigned: Path


@pytest.fixture(scope="module")
def fw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firmware]:
    work = tmp_path_factory.mktemp("firmware-e2e")
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


def create(fw: Firmware, name: str, disk: Path) -> vc.BiosClient:
    out = fw.server.work / "bundles" / name
    done = run_vbios("domain", "create", name, "--machine", "qemu", "--disk", str(disk),
                     "--home", str(fw.server.home), "--out", str(out))
    assert done.returncode == 0, done.stderr
    return vc.BiosClient.from_bundle(fw.server.url, out, timeout=120)


def console(fw: Firmware, name: str) -> bytes:
    done = run_vbios("domain", "console", name, "--home", str(fw.server.home), "--bytes",
                     str(1 << 20))
    assert done.returncode == 0, done.stderr
    return done.stdout.encode("utf-8", "surrogateescape")


def attempts(text: bytes) -> list[str]:
    """The domain's entries the firmware tried, in order (not the boot manager menu that
    closes the boot order)."""
    return [f"{number.decode()} {name.decode()}" for number, name in ATTEMPT.findall(text)
            if number != b"BootFFFF"]


#: The keeper's line at the start of each boot.
BOOT_MARK = b"vbios: boot ("


class Boots:
    """What the domain's latest boot printed, after the keeper's mark that starts it."""

    def __init__(self, fw: Firmware, name: str) -> None:
        self.fw, self.name, self.seen = fw, name, 0

    def next(self, until: Callable[[bytes], bool], what: str) -> bytes:
        """Wait for a boot newer than the last one returned, until its text satisfies
        ``until``; its text (from its mark on)."""
        latest: list[tuple[bytes, int]] = []

        def arrived() -> bool:
            text = console(self.fw, self.name)
            marks = text.count(BOOT_MARK)
            if marks <= self.seen:
                return False
            latest[:] = [(text[text.rindex(BOOT_MARK):], marks)]
            return until(latest[0][0])

        waiting.wait_for(arrived, what, BOOT_LIMIT, 0.5)
        text, self.seen = latest[0]
        return text

    def probe(self) -> tuple[ProbeReport, bytes]:
        text = self.next(lambda t: b"VBIOS-PROBE-END" in t, "the probe's line")
        [report] = parse_probe_lines(text)[-1:]
        return report, text


def published(report: ProbeReport) -> dict[str, object]:
    assert report.attributes is not None
    document: dict[str, object] = json.loads(report.attributes)
    attributes = document["attributes"]
    assert isinstance(attributes, dict)
    return attributes


def test_boot_entries_order_boot_next_and_the_published_attributes(fw: Firmware) -> None:
    with create(fw, "order", fw.signed) as bios:
        boots = Boots(fw, "order")
        bios.set_attributes({"AssetTag": "first"})
        bios.reset("On")
        report, text = boots.probe()
        assert attempts(text)[:1] == ["Boot0001 VirtIO disk 0"]
        assert (report.secure_boot, report.setup_mode, report.boot_current) == (1, 0, 1)
        assert report.boot_order is not None and report.boot_order[:5] == (1, 2, 3, 4, 5)
        assert published(report)["AssetTag"] == "first"
        assert bios.get_secure_boot().current_boot == "Enabled"

        order = list(reversed(bios.get_boot_order().order))
        bios.set_boot_order(order)
        bios.set_attributes({"AssetTag": "second"}, apply_time="OnReset")
        bios.reset("ForceRestart")
        report, text = boots.probe()
        tried = attempts(text)
        assert tried[0] == "Boot0005 UEFI Shell" and tried[-1] == "Boot0001 VirtIO disk 0"
        assert report.boot_order is not None and report.boot_order[:5] == (5, 4, 3, 2, 1)
        assert published(report)["AssetTag"] == "second"

        bios.set_boot_order(list(reversed(order)))
        bios.set_boot_next("Cd.Sata.0")
        bios.reset("ForceRestart")
        report, text = boots.probe()
        assert attempts(text)[:2] == ["Boot0002 SATA CD-ROM 0", "Boot0001 VirtIO disk 0"]
        assert bios.get_boot_order().boot_next == "Cd.Sata.0"  # until the firmware is read back
        bios.reset("ForceRestart")
        report, text = boots.probe()
        assert attempts(text)[:1] == ["Boot0001 VirtIO disk 0"]  # BootNext was used once
        assert bios.get_boot_order().boot_next is None
        bios.reset("ForceOff")


def test_secure_boot_on_off_and_setup_mode(fw: Firmware) -> None:
    with create(fw, "secure", fw.unsigned) as bios:
        boots = Boots(fw, "secure")
        bios.reset("On")
        text = boots.next(lambda t: b"Access Denied" in t, "the unsigned probe refused")
        assert b"VBIOS-PROBE v1" not in text
        assert bios.get_secure_boot().current_boot == "Enabled"

        bios.set_secure_boot(False)
        bios.reset("ForceRestart")
        report, _ = boots.probe()
        assert (report.secure_boot, report.setup_mode) == (0, 0)
        assert bios.get_secure_boot().current_boot == "Disabled"

        bios.set_secure_boot(True)
        bios.reset_secure_boot_keys("DeleteAllKeys")
        assert all(certs == [] for certs in bios.get_secure_boot_databases().values())
        bios.reset("ForceRestart")
        report, _ = boots.probe()  # setup mode: nothing is enforced
        assert (report.secure_boot, report.setup_mode) == (0, 1)
        view = bios.get_secure_boot()
        assert (view.enabled, view.current_boot, view.mode) == (True, "Disabled", "SetupMode")

        bios.reset_secure_boot_keys("ResetAllKeysToDefault")
        bios.reset("ForceRestart")
        boots.next(lambda t: b"Access Denied" in t, "the unsigned probe refused again")
        bios.reset("ForceOff")


def test_proc_cores_reach_the_guest(fw: Firmware) -> None:
    with create(fw, "cores", fw.signed) as bios:
        boots = Boots(fw, "cores")
        bios.set_attributes({"ProcCores": "2", "LogicalProc": "Disabled"},
                            apply_time="OnReset")
        bios.reset("On")
        report, _ = boots.probe()
        assert report.cpus == 2
        bios.reset("ForceOff")


def test_pxe_boots_from_tftp_and_is_gone_when_disabled(fw: Firmware, tmp_path: Path) -> None:
    tftp = tmp_path / "tftp"
    tftp.mkdir()
    (tftp / "probe.efi").write_bytes(fw.probe.signed.read_bytes())
    empty = tmp_path / "empty"
    empty.mkdir()
    with create(fw, "pxe", empty) as bios:
        done = run_vbios("domain", "netboot", "pxe", "--tftp", str(tftp), "--bootfile",
                         "probe.efi", "--home", str(fw.server.home))
        assert done.returncode == 0, done.stderr
        boots = Boots(fw, "pxe")
        bios.set_boot_order(["Pxe.Nic.0", "Disk.Virtio.0", "Cd.Sata.0", "Http.Nic.0",
                             "Shell.Uefi"])
        bios.reset("On")
        report, text = boots.probe()
        assert attempts(text)[0] == "Boot0003 PXE IPv4 on NIC 0"
        assert report.boot_current == 3
        bios.set_attributes({"PxeDev1EnDis": "Disabled"}, apply_time="OnReset")
        bios.reset("ForceRestart")
        text = boots.next(lambda t: b"Boot0001" in t, "the next attempts")
        assert not any("PXE" in line for line in attempts(text))
        bios.reset("ForceOff")


def test_refusals_leave_the_settings_and_the_variable_store_unchanged(fw: Firmware,
                                                                      tmp_path: Path) -> None:
    with create(fw, "refusals", fw.signed) as bios:
        boots = Boots(fw, "refusals")
        bios.reset("On")
        boots.probe()
        bios.reset("ForceOff")
        store = fw.server.home / "machines" / "refusals" / "vars.fd"
        before = (store.read_bytes(), bios.get_attributes().version)
        junk = tmp_path / "junk.pem"
        junk.write_text("not a certificate\n")
        home = str(fw.server.home)
        for argv in (("secureboot", "add-cert", "refusals", "db", str(junk)),
                     ("disk", "attach", "refusals", str(tmp_path / "missing.img"))):
            done = run_vbios("domain", *argv, "--home", home)
            assert done.returncode == 1 and len(done.stderr.splitlines()) == 1, done.stderr
        pk = bios.get_secure_boot_databases()["PK"][0].sha256
        reply = fw.server.call(fw.server.admin_bundle, "RemoveSecureBootCertificate",
                               f"<v:Domain>refusals</v:Domain><v:Database>PK</v:Database>"
                               f"<v:Sha256>{pk}</v:Sha256>")
        assert reply.fault_code == "InvalidSecureBootChange"
        reply = fw.server.call(fw.server.admin_bundle, "AddSecureBootCertificate",
                               "<v:Domain>refusals</v:Domain><v:Database>dbz</v:Database>"
                               "<v:Certificate>x</v:Certificate>")
        assert reply.fault_code == "InvalidRequest"
        with pytest.raises(vc.UnknownBootOption):
            bios.set_boot_order(["Disk.Virtio.0", "Floppy.0"])
        assert (store.read_bytes(), bios.get_attributes().version) == before
