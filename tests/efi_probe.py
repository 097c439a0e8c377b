"""The EFI probe of tests/efi/probe.c: built from source with Debian's gnu-efi, signed with
Debian's snakeoil test key, booted on plain QEMU + OVMF, and its console line parsed.

The probe prints ``VBIOS-PROBE v1 SecureBoot=.. SetupMode=.. BootCurrent=.. BootOrder=..
Cpus=.. Attributes=.. BiosVersion=.. SysManufacturer=.. SysProduct=.. SysSerial=..
SysUuid=..`` and ``VBIOS-PROBE-END`` on ConOut (OVMF mirrors it to
the serial console), then returns EFI_ABORTED so the boot manager goes on to the next boot
option.
Everything is written under the directory a caller gives (a pytest tmp dir)."""

from __future__ import annotations

import base64
import binascii
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

SOURCE = Path(__file__).resolve().parent / "efi" / "probe.c"
SNAKEOIL_KEY = Path("/usr/share/ovmf/PkKek-1-snakeoil.key")
SNAKEOIL_CERT = Path("/usr/share/ovmf/PkKek-1-snakeoil.pem")
SNAKEOIL_PASSPHRASE = b"snakeoil"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
VARS_EMPTY = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
VARS_SNAKEOIL = Path("/usr/share/OVMF/OVMF_VARS_4M.snakeoil.fd")
ATTRIBUTES_GUID = "7f3c4a52-1e0b-4c6e-9a53-0d0f2b1e5c11"
CRASH = b"!!!! X64 Exception"  # OVMF's exception handler, then a hang
ATTRIBUTES_MAX = 3072  # bytes the probe prints; a larger VbiosAttributes is "toolong"

# Debian 12 gnu-efi 3.0.15: the flags of its Make.defaults (x86_64) and apps/Makefile, the
# sections of its Make.rules; headers, crt0, linker script and libraries from the package.
EFI_INCLUDES = ("/usr/include/efi", "/usr/include/efi/x86_64", "/usr/include/efi/protocol")
EFI_CFLAGS = (
    "-DCONFIG_x86_64", "-DGNU_EFI_USE_MS_ABI", "-maccumulate-outgoing-args", "--std=c11",
    "-mno-red-zone", "-mno-avx", "-fpic", "-g", "-O2", "-Wall", "-Wextra", "-Werror",
    "-fshort-wchar", "-fno-strict-aliasing", "-ffreestanding", "-fno-stack-protector",
    "-fno-stack-check", "-fno-merge-all-constants",
)
EFI_CRT0 = "/usr/lib/crt0-efi-x86_64.o"
EFI_LDS = "/usr/lib/elf_x86_64_efi.lds"
EFI_LDFLAGS = (
    "-nostdlib", "--warn-common", "--no-undefined", "--fatal-warnings", "--build-id=sha1",
    "-shared", "-Bsymbolic", "-L/usr/lib",
)
EFI_SECTIONS = (".text", ".sdata", ".data", ".dynamic", ".dynsym", ".rel", ".rela", ".rel.*",
                ".rela.*", ".rel*", ".rela*", ".reloc")
PACKAGES = "gcc, binutils, gnu-efi, sbsigntool (make deps)"


class ProbeBuildError(RuntimeError):
    """A step of building or signing the probe failed; the message holds its stderr."""


@dataclass(frozen=True)
class Probe:
    unsigned: Path
    signed: Path
    snakeoil_cert_der: bytes  # what a test enrolls into PK, KEK and db


@dataclass(frozen=True)
class ProbeReport:
    secure_boot: int | None
    setup_mode: int | None
    boot_current: int | None
    boot_order: tuple[int, ...] | None
    cpus: int | None
    attributes: bytes | None
    attributes_too_long: bool = False  # ``Attributes=toolong`` (then attributes is None)
    #: SMBIOS type 0 BIOS Version (None: the line had none, or said ``-``). Bytes outside
    #: printable ASCII, and spaces, show as ``?``.
    bios_version: str | None = None
    #: SMBIOS type 1: manufacturer, product and serial (shown as BiosVersion is) and UUID.
    sys_manufacturer: str | None = None
    sys_product: str | None = None
    sys_serial: str | None = None
    sys_uuid: str | None = None
    line: str = field(default="", compare=False)  # the line as parsed, for messages


def _run(argv: Sequence[str], step: str, work: Path) -> None:
    environment = {**os.environ, "TMPDIR": str(work)}  # gcc's temporary files stay in work
    try:
        done = subprocess.run(list(argv), capture_output=True, timeout=60, check=False,
                              env=environment)
    except FileNotFoundError as error:
        raise ProbeBuildError(f"{step}: {argv[0]} is not installed (needs {PACKAGES})") from error
    if done.returncode != 0:
        raise ProbeBuildError(
            f"{step} failed (exit {done.returncode}): {' '.join(argv)}\n"
            f"{done.stderr.decode(errors='replace')}{done.stdout.decode(errors='replace')}")


def build_probe(work: Path, source: Path = SOURCE) -> Probe:
    """Compile, link and convert probe.c to a PE32+ EFI application, then sign a copy with
    the snakeoil key and verify it. All outputs (and the decrypted key) live in ``work``;
    a failed step raises ProbeBuildError with its command and stderr."""
    for needed in (*EFI_INCLUDES, EFI_CRT0, EFI_LDS, SNAKEOIL_KEY, SNAKEOIL_CERT):
        if not Path(needed).exists():
            raise ProbeBuildError(f"{needed} is missing (needs {PACKAGES}, ovmf)")
    work.mkdir(parents=True, exist_ok=True)
    obj, shared = work / "probe.o", work / "probe.so"
    unsigned, signed = work / "probe.efi", work / "probe.signed.efi"
    includes = [f"-I{directory}" for directory in EFI_INCLUDES]
    _run(["gcc", *includes, *EFI_CFLAGS, "-c", str(source), "-o", str(obj)], "compile", work)
    libgcc = subprocess.run(["gcc", "-print-libgcc-file-name"], capture_output=True, text=True,
                            check=False).stdout.strip()
    _run(["ld", *EFI_LDFLAGS, EFI_CRT0, str(obj), "-o", str(shared), "-lefi", "-lgnuefi",
          *([libgcc] if libgcc else []), "-T", EFI_LDS], "link", work)
    sections = [arg for name in EFI_SECTIONS for arg in ("-j", name)]
    _run(["objcopy", *sections, "--target", "efi-app-x86_64", str(shared), str(unsigned)],
         "objcopy", work)
    key = _decrypted_key(work / "snakeoil.key")
    _run(["sbsign", "--key", str(key), "--cert", str(SNAKEOIL_CERT), "--output", str(signed),
          str(unsigned)], "sbsign", work)
    _run(["sbverify", "--cert", str(SNAKEOIL_CERT), str(signed)], "sbverify", work)
    cert = x509.load_pem_x509_certificate(SNAKEOIL_CERT.read_bytes())
    return Probe(unsigned=unsigned, signed=signed,
                 snakeoil_cert_der=cert.public_bytes(serialization.Encoding.DER))


def _decrypted_key(path: Path) -> Path:
    """The snakeoil key without its passphrase (sbsign cannot take one), mode 0600."""
    key = serialization.load_pem_private_key(SNAKEOIL_KEY.read_bytes(), SNAKEOIL_PASSPHRASE)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, pem)
    finally:
        os.close(descriptor)
    return path


def disk_dir(work: Path, image: Path, files: dict[str, bytes] | None = None) -> Path:
    """A fresh directory holding ``image`` at EFI/BOOT/BOOTX64.EFI (the removable-media
    default path) and any extra ``files`` (relative path: content), for a read-only
    ``fat:`` drive."""
    directory = work / f"disk-{image.name}"
    suffix = 1
    while directory.exists():
        suffix += 1
        directory = work / f"disk-{image.name}-{suffix}"
    boot = directory / "EFI" / "BOOT"
    boot.mkdir(parents=True)
    shutil.copyfile(image, boot / "BOOTX64.EFI")
    for name, content in (files or {}).items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return directory


# --- the console ------------------------------------------------------------------------

_ESCAPES = re.compile(rb"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROLS = re.compile(rb"[\x00-\x1f\x7f]")
_PROBE = re.compile(rb"VBIOS-PROBE v1 ((?:(?!VBIOS-PROBE).)*?)\s*VBIOS-PROBE-END", re.S)
_FIELDS = ("SecureBoot", "SetupMode", "BootCurrent", "BootOrder", "Cpus", "Attributes")
#: Fields added later, each optional in this order (a line of an older probe lacks them).
_LATER = ("BiosVersion", "SysManufacturer", "SysProduct", "SysSerial", "SysUuid")
_HEX4 = re.compile(r"[0-9A-F]{4}")


def parse_probe_lines(console: bytes) -> list[ProbeReport]:
    """Every complete probe line on a console transcript, in order. ANSI escape sequences
    and control characters (the terminal's line wraps included) are dropped first; a line
    counts once its VBIOS-PROBE-END follows; a malformed one is skipped."""
    text = _CONTROLS.sub(b"", _ESCAPES.sub(b"", console))
    reports = []
    for match in _PROBE.finditer(text):
        report = _parse_fields(match.group(1).decode("ascii", errors="replace"))
        if report is not None:
            reports.append(report)
    return reports


def _parse_fields(body: str) -> ProbeReport | None:
    pairs = [item.partition("=") for item in body.split(" ")]
    names = [name for name, _, _ in pairs]
    if names[:len(_FIELDS)] != list(_FIELDS) or names[len(_FIELDS):] != list(
            _LATER[:len(names) - len(_FIELDS)]) or any(sep != "=" for _, sep, _ in pairs):
        return None
    values = {name: value for name, _, value in pairs}
    try:
        order = values["BootOrder"]
        attributes = values["Attributes"]
        return ProbeReport(
            secure_boot=_flag(values["SecureBoot"]),
            setup_mode=_flag(values["SetupMode"]),
            boot_current=None if values["BootCurrent"] == "-" else _hex4(values["BootCurrent"]),
            boot_order=None if order == "-" else tuple(_hex4(v) for v in order.split(",")),
            cpus=None if values["Cpus"] == "-" else _count(values["Cpus"]),
            attributes=(None if attributes in ("-", "toolong")
                        else base64.b64decode(attributes, validate=True)),
            attributes_too_long=attributes == "toolong",
            bios_version=_text(values.get("BiosVersion")),
            sys_manufacturer=_text(values.get("SysManufacturer")),
            sys_product=_text(values.get("SysProduct")),
            sys_serial=_text(values.get("SysSerial")),
            sys_uuid=_text(values.get("SysUuid")),
            line=f"VBIOS-PROBE v1 {body}",
        )
    except (ValueError, binascii.Error):
        return None


def _text(value: str | None) -> str | None:
    """A text field: None when absent (an older probe) or ``-`` (none)."""
    return None if value in (None, "-") else value


def smbios_shown(text: str) -> str:
    """``text`` as the probe shows an SMBIOS string (spaces and non-ASCII as ``?``, 64
    characters at most)."""
    return "".join(c if "!" <= c <= "~" else "?" for c in text)[:64]


def _flag(value: str) -> int | None:
    if value == "-":
        return None
    if value not in ("0", "1"):
        raise ValueError(value)
    return int(value)


def _hex4(value: str) -> int:
    if not _HEX4.fullmatch(value):
        raise ValueError(value)
    return int(value, 16)


def _count(value: str) -> int:
    if not value.isdigit():
        raise ValueError(value)
    return int(value)


# --- plain QEMU + OVMF under TCG ----------------------------------------------------------

@dataclass(frozen=True)
class Boot:
    console: bytes
    seconds: float  # from spawn to the moment ``until`` held (or the timeout)
    reached: bool  # ``until`` held before the timeout

    @property
    def reports(self) -> list[ProbeReport]:
        return parse_probe_lines(self.console)

    def text(self) -> str:
        """The console without escape sequences, for assertion messages."""
        return _ESCAPES.sub(b"", self.console).decode("ascii", errors="replace")


def boot(work: Path, disk: Path, vars_template: Path, until: Callable[[bytes], bool], *,
         smp: int = 1, timeout: float = 90.0) -> Boot:
    """Boot OVMF under TCG with its own copy of ``vars_template`` and ``disk`` as a read-only
    FAT drive, capturing the serial console, until ``until(console)`` holds or ``timeout``
    passes; QEMU is then killed by its pid, whatever happened."""
    work.mkdir(parents=True, exist_ok=True)
    stem = f"{disk.name}-{time.monotonic_ns()}"
    variables, console = work / f"{stem}.vars.fd", work / f"{stem}.console"
    shutil.copyfile(vars_template, variables)
    argv = [
        "qemu-system-x86_64", "-accel", "tcg", "-machine", "q35", "-nodefaults",
        "-no-user-config", "-display", "none", "-m", "256", "-smp", str(smp),
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
        "-drive", f"if=pflash,format=raw,unit=1,file={variables}",
        "-chardev", f"file,id=serial0,path={console}", "-serial", "chardev:serial0",
        "-drive", f"if=none,id=d0,format=raw,file=fat:{disk},readonly=on",
        "-device", "virtio-blk-pci,drive=d0",
    ]
    started = time.monotonic()
    with open(work / f"{stem}.stderr", "wb") as errors:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=errors)
    reached = False
    try:
        while time.monotonic() - started < timeout and process.poll() is None:
            seen = console.read_bytes() if console.exists() else b""
            if until(seen):
                reached = True
                break
            if CRASH in seen:  # the firmware hangs after printing the exception
                break
            time.sleep(0.1)
        seconds = time.monotonic() - started
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    output = console.read_bytes() if console.exists() else b""
    reached = reached or until(output)
    if not reached and process.returncode not in (0, -signal.SIGKILL):
        stderr = (work / f"{stem}.stderr").read_text(errors="replace")
        raise RuntimeError(f"QEMU exited {process.returncode}: {stderr}")
    return Boot(console=output, seconds=seconds, reached=reached)
