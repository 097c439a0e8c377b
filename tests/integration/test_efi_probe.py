"""The EFI probe (tests/efi/probe.c): its console line parsed, its build, and real boots on
plain QEMU + OVMF under TCG, Secure Boot off and on (snakeoil keys), signed and unsigned.

Each real boot takes 4 to 9 s to the first boot attempt (about 20 s for the one going
through the EFI Shell's startup.nsh countdown); they run one at a time, and every QEMU is
killed by its pid as soon as the console shows what the test waits for."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.efi_probe import (
    ATTRIBUTES_GUID,
    ATTRIBUTES_MAX,
    SNAKEOIL_CERT,
    VARS_EMPTY,
    VARS_SNAKEOIL,
    Boot,
    Probe,
    ProbeBuildError,
    ProbeReport,
    boot,
    build_probe,
    disk_dir,
    parse_probe_lines,
    smbios_shown,
)
from tests.qemu_support import kill_all

END = b"VBIOS-PROBE-END"


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Probe:
    return build_probe(tmp_path_factory.mktemp("efi-probe"))


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    left = kill_all(tmp_path)
    assert left == [], f"QEMU left running for {tmp_path}: {left}"


# --- parsing (no QEMU) -------------------------------------------------------------------

TRANSCRIPT = (
    b"\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2J\x1b[01;01H"
    b'BdsDxe: starting Boot0003 "UEFI Misc Device" from PciRoot(0x0)/Pci(0x3,0x0)\r\n'
    b"\r\n\x1b[0m\x1b[37m\x1b[40mVBIOS-PROBE v1 SecureBoot=1 SetupMode=0 BootCurrent=0003 "
    b"BootOrder=0003,0000,001A Cpus=2 Attri\x1b[1mbutes=AAEC\r\nAwT/\r\n"
    b"VBIOS-PROBE-END\r\n"
    b'BdsDxe: failed to start Boot0003 "UEFI Misc Device": Aborted\r\n'
    b"VBIOS-PROBE v1 SecureBoot=2 SetupMode=0 BootCurrent=0003 BootOrder=0003 Cpus=1 "
    b"Attributes=-\r\nVBIOS-PROBE-END\r\n"  # malformed (SecureBoot=2): skipped
    b"\x1b[1m\x1b[33mShell> \x1b[0mfs0:\\probe.efi\r\n"
    b"VBIOS-PROBE v1 SecureBoot=0 SetupMode=1 BootCurrent=0004 BootOrder=0004 Cpus=1 "
    b"Attributes=toolong\r\nVBIOS-PROBE-END\r\n"
    b"VBIOS-PROBE v1 SecureBoot=0 SetupMode=1 BootCurrent=0004 BootOrder=0004 Cpus=1 Attri"
)  # the last line is cut off (no VBIOS-PROBE-END): not complete, not reported


def test_parse_transcript_with_escape_sequences_wraps_and_an_incomplete_line() -> None:
    assert parse_probe_lines(TRANSCRIPT) == [
        ProbeReport(secure_boot=1, setup_mode=0, boot_current=3, boot_order=(3, 0, 0x1A),
                    cpus=2, attributes=bytes([0, 1, 2, 3, 4, 0xFF])),
        ProbeReport(secure_boot=0, setup_mode=1, boot_current=4, boot_order=(4,), cpus=1,
                    attributes=None, attributes_too_long=True),
    ]


def test_parse_a_line_with_dashes_everywhere() -> None:
    console = (b"VBIOS-PROBE v1 SecureBoot=- SetupMode=- BootCurrent=- BootOrder=- Cpus=- "
               b"Attributes=-\r\nVBIOS-PROBE-END\r\n")
    [report] = parse_probe_lines(console)
    assert report == ProbeReport(secure_boot=None, setup_mode=None, boot_current=None,
                                 boot_order=None, cpus=None, attributes=None)
    assert not report.attributes_too_long
    assert report.line.startswith("VBIOS-PROBE v1 SecureBoot=- ")


def test_parse_the_bios_version_field_of_newer_probes() -> None:
    console = (b"VBIOS-PROBE v1 SecureBoot=0 SetupMode=1 BootCurrent=0001 BootOrder=0001 Cpus=1 "
               b"Attributes=- BiosVersion=vbios-7\r\nVBIOS-PROBE-END\r\n"
               b"VBIOS-PROBE v1 SecureBoot=0 SetupMode=1 BootCurrent=0001 BootOrder=0001 Cpus=1 "
               b"Attributes=- BiosVersion=-\r\nVBIOS-PROBE-END\r\n"
               b"VBIOS-PROBE v1 SecureBoot=0 SetupMode=1 BootCurrent=0001 BootOrder=0001 Cpus=1 "
               b"Attributes=- BiosVersion=x Extra=1\r\nVBIOS-PROBE-END\r\n"  # unknown: skipped
               b"VBIOS-PROBE v1 SecureBoot=0 SetupMode=1 BootCurrent=0001 BootOrder=0001 Cpus=1 "
               b"BiosVersion=x Attributes=-\r\nVBIOS-PROBE-END\r\n")  # out of order: skipped
    first, second = parse_probe_lines(console)
    assert first.bios_version == "vbios-7" and first.boot_current == 1
    assert second.bios_version is None
    assert parse_probe_lines(TRANSCRIPT)[0].bios_version is None  # an older probe's line


def test_parse_the_smbios_system_fields_of_newer_probes() -> None:
    head = b"VBIOS-PROBE v1 SecureBoot=0 SetupMode=1 BootCurrent=0001 BootOrder=0001 Cpus=1 "
    console = (head + b"Attributes=- BiosVersion=vbios-2 SysManufacturer=bios-ws "
               b"SysProduct=Virtual?VM SysSerial=VM-0123456789AB "
               b"SysUuid=ec60d203-3ab2-5349-b33e-6664eed9a4f6\r\nVBIOS-PROBE-END\r\n"
               + head + b"Attributes=- BiosVersion=- SysManufacturer=- SysProduct=- "
               b"SysSerial=- SysUuid=-\r\nVBIOS-PROBE-END\r\n"
               + head + b"Attributes=- BiosVersion=x SysProduct=y\r\nVBIOS-PROBE-END\r\n")
    first, second = parse_probe_lines(console)  # the third skips a field: not parsed
    assert (first.sys_manufacturer, first.sys_product, first.sys_serial, first.sys_uuid) == (
        "bios-ws", "Virtual?VM", "VM-0123456789AB", "ec60d203-3ab2-5349-b33e-6664eed9a4f6")
    assert (second.bios_version, second.sys_manufacturer, second.sys_uuid) == (None,) * 3
    assert smbios_shown("Virtual Trusted \u00e9") == "Virtual?Trusted??"


def test_parse_nothing_from_a_console_without_the_probe() -> None:
    assert parse_probe_lines(b"") == []
    assert parse_probe_lines(b"BdsDxe: No bootable option or device was found.\r\n") == []


# --- the build (gnu-efi, sbsigntool; no QEMU) ---------------------------------------------

def _pe_header(image: bytes) -> tuple[int, int, int, tuple[int, int]]:
    """Machine, optional-header magic, subsystem, and the certificate table (offset, size)."""
    assert image[:2] == b"MZ"
    pe = struct.unpack_from("<I", image, 0x3C)[0]
    assert image[pe:pe + 4] == b"PE\0\0"
    machine = struct.unpack_from("<H", image, pe + 4)[0]
    optional = pe + 24
    magic, subsystem = struct.unpack_from("<H", image, optional)[0], image[optional + 68]
    security = struct.unpack_from("<II", image, optional + 112 + 4 * 8)  # data directory 4
    return machine, magic, subsystem, security


def test_build_gives_an_efi_application_signed_and_unsigned(probe: Probe) -> None:
    unsigned, signed = probe.unsigned.read_bytes(), probe.signed.read_bytes()
    machine, magic, subsystem, security = _pe_header(unsigned)
    assert (machine, magic, subsystem) == (0x8664, 0x20B, 10)  # x86-64 PE32+ EFI app
    assert security == (0, 0)
    assert len(unsigned) < 200_000
    *_, (offset, size) = _pe_header(signed)
    assert size > 0 and offset + size <= len(signed)  # an Authenticode signature
    key = probe.unsigned.parent / "snakeoil.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED" not in key.read_bytes()
    cert = x509.load_der_x509_certificate(probe.snakeoil_cert_der)
    assert cert == x509.load_pem_x509_certificate(SNAKEOIL_CERT.read_bytes())


def test_a_failed_build_says_why(tmp_path: Path) -> None:
    broken = tmp_path / "broken.c"
    broken.write_text("#include <efi.h>\nEFI_STATUS efi_main(void) { return no_such; }\n")
    with pytest.raises(ProbeBuildError, match=r"(?s)compile failed.*no_such"):
        build_probe(tmp_path / "work", broken)
    assert not (tmp_path / "work" / "probe.efi").exists()


# --- real boots ----------------------------------------------------------------------------

def _probe_then_next(console: bytes) -> bool:
    """The probe printed, and the boot manager went on (its option failed: Aborted)."""
    return END in console and b": Aborted" in console.partition(END)[2]


def _one_report(result: Boot) -> ProbeReport:
    assert result.reached, f"no probe line after {result.seconds:.1f} s:\n{result.text()}"
    reports = result.reports
    assert len(reports) == 1, result.text()
    return reports[0]


@pytest.mark.qemu
def test_empty_store_runs_the_probe_from_the_removable_media_path(
        probe: Probe, work: Path) -> None:
    result = boot(work, disk_dir(work, probe.unsigned), VARS_EMPTY, _probe_then_next)
    report = _one_report(result)
    assert (report.secure_boot, report.setup_mode) == (0, 1)  # no PK: setup mode
    assert report.boot_current is not None and report.boot_order is not None
    assert report.boot_current in report.boot_order
    assert (report.cpus, report.attributes, report.attributes_too_long) == (1, None, False)
    # EFI_ABORTED: the boot manager moved on to its next option
    assert f"failed to start Boot{report.boot_current:04X} ".encode() in result.console
    assert b"Aborted" in result.console


@pytest.mark.qemu
def test_cpus_counts_the_enabled_processors(probe: Probe, work: Path) -> None:
    result = boot(work, disk_dir(work, probe.unsigned), VARS_EMPTY, _probe_then_next, smp=2)
    assert _one_report(result).cpus == 2


@pytest.mark.qemu
def test_attributes_show_the_vendor_variable(probe: Probe, work: Path) -> None:
    """The EFI Shell (next after the probe) sets VbiosAttributes, runs the probe again, and
    so on: a short value, one of exactly the limit, then one byte over it."""
    short = b"vbios\x00\xff" + bytes(range(256)) * 4
    full = bytes((7 * i) % 256 for i in range(ATTRIBUTES_MAX))
    script = []
    for value in (short, full, bytes(ATTRIBUTES_MAX + 1)):
        script += [f"setvar VbiosAttributes -guid {ATTRIBUTES_GUID} -bs -rt -nv =H{value.hex()}",
                   r"fs0:\EFI\BOOT\BOOTX64.EFI"]
    script.append("reset -s")
    disk = disk_dir(work, probe.unsigned, {"startup.nsh": "\r\n".join(script).encode() + b"\r\n"})
    result = boot(work, disk, VARS_EMPTY, lambda console: console.count(END) >= 4)
    assert result.reached, result.text()[-3000:]
    first, *from_shell = result.reports
    assert (first.attributes, first.attributes_too_long) == (None, False)
    assert [(report.attributes, report.attributes_too_long) for report in from_shell] == [
        (short, False), (full, False), (None, True)]
    later = sum(len(f" {name}=") + 64 for name in ("BiosVersion", "SysManufacturer",
                                                   "SysProduct", "SysSerial", "SysUuid"))
    assert all(len(report.line) < 4200 + later for report in result.reports)


@pytest.mark.qemu
def test_secure_boot_runs_the_signed_probe(probe: Probe, work: Path) -> None:
    result = boot(work, disk_dir(work, probe.signed), VARS_SNAKEOIL, _probe_then_next)
    report = _one_report(result)
    assert (report.secure_boot, report.setup_mode) == (1, 0)
    assert report.boot_current is not None and report.boot_order is not None
    assert report.boot_current in report.boot_order


@pytest.mark.qemu
def test_secure_boot_refuses_the_unsigned_probe(probe: Probe, work: Path) -> None:
    result = boot(work, disk_dir(work, probe.unsigned), VARS_SNAKEOIL,
                  lambda console: b"No bootable option" in console)
    assert result.reached, result.text()
    assert b"Access Denied" in result.console
    assert b"VBIOS-PROBE" not in result.console
    assert result.reports == []
