"""One QEMU process of a machine: spawned, watched, and stopped by its keeper.

A machine gets a new QEMU at every boot (a guest reset too: QEMU runs with
``-no-reboot``, so a reset ends the process and the keeper boots a new one after
the store had its say). Each QEMU is a ``Guest`` with a generation number; what
its threads notice is posted to the keeper as ``Exited`` (with the reason of the
last SHUTDOWN event, None if QEMU died without one) or ``Bitten`` (the watchdog
found it hung or in an error state).

QEMU dies with its parent thread (PR_SET_PDEATHSIG, SIGKILL): the keeper spawns
every QEMU from its main thread, so a killed keeper never leaves a guest behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bios_ws.config import PlatformOptions
from bios_ws.domain.firmware import BootDevice, BootPlan, MachineOptions, SlotBoot
from bios_ws.domain.smbios import SmbiosTables
from bios_ws.errors import MachineError
from bios_ws.platform.qemu.console import ConsoleLog
from bios_ws.platform.qemu.httpboot import HTTP_BOOT_ADDRESS
from bios_ws.platform.qemu.layout import MachineDir
from bios_ws.platform.qemu.qmp import Message, Qmp, QmpClosed, QmpError

log = logging.getLogger("bios_ws.platform.qemu")

PR_SET_PDEATHSIG = 1
HTTPBOOT_MODULE = "bios_ws.platform.qemu.httpboot"
#: Run states the watchdog counts as sick (query-status).
SICK = frozenset({"internal-error", "guest-panicked"})
#: Seconds QEMU has to create its monitor and answer it at start, and to quit.
START_TIMEOUT = 20.0
QUIT_TIMEOUT = 5.0
_LOG_KEEP = 256 * 1024


@dataclass(frozen=True)
class Exited:
    generation: int
    #: The reason of QEMU's last SHUTDOWN event (guest-shutdown, guest-reset, ...).
    reason: str | None


@dataclass(frozen=True)
class Bitten:
    generation: int
    why: str


#: How a machine starts when the hooks gave no plan: as before plans existed (one vCPU,
#: the serial console, no NIC), its store as the firmware left it.
UNPLANNED = MachineOptions(nic=False)
#: The DHCP boot file offered when the machine has no network boot source: a name no
#: TFTP directory serves, so a PXE attempt fails at once on a TFTP error (about 3.5 s,
#: DHCP included) instead of waiting 60 s for a DHCP offer with a boot file.
NO_BOOT_FILE = "vbios-no-boot-file"
_QCOW2_MAGIC = b"QFI\xfb"
_QCOW2_EXTERNAL_DATA = 0x4


def qemu_argv(options: PlatformOptions, machine: MachineDir,
              plan: BootPlan | None = None) -> tuple[list[str], list[str]]:
    """QEMU's command line for ``machine`` booting ``plan`` (TCG, q35, no defaults,
    paused with ``-S``; the devices where ``layout.MachineLayout`` says), and notes for
    the console about what had to be left out.

    A plan with a firmware slot boots that slot's image as the code (the installation's
    while the slot has no file) and shows its BIOS version in SMBIOS type 0; a trial boot
    of a slot always has the serial console (its boot attempt is watched there). The
    plan's SMBIOS tables become QEMU's types 0 to 3."""
    settings = plan.machine if plan is not None else UNPLANNED
    slot = plan.slot if plan is not None else None
    layout = machine.layout
    code: Path = Path(options.ovmf_code)
    if slot is not None and machine.slot_image(slot.slot).is_file():
        code = machine.slot_image(slot.slot)
    threads = settings.threads_per_core
    argv = [
        options.qemu_binary, "-name", f"vbios-{_opt(machine.domain_id)}",
        "-accel", "tcg", "-machine", "q35", "-nodefaults", "-no-user-config",
        "-display", "none", "-m", str(int(options.memory_mib)),
        "-smp", f"cpus={settings.cpus},sockets=1,cores={settings.cpus // threads},"
                f"threads={threads}",
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={_opt(code)}",
        "-drive", f"if=pflash,format=raw,unit=1,file={_opt(machine.vars)}",
        "-no-reboot", "-S",
        "-qmp", f"unix:{_opt(machine.qmp_socket)},server=on,wait=off",
        "-device", f"ide-cd,bus=ide.{layout.cdrom_port},id=cdrom",
    ]
    argv += smbios_args(plan.smbios if plan is not None else None, slot)
    if settings.serial or (slot is not None and slot.trial):
        argv += ["-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console"]
    notes: list[str] = []
    for index, disk in enumerate(machine.disks):
        if index >= layout.max_disks:
            notes.append(f"disk {disk} skipped: a machine takes {layout.max_disks} disks")
            continue
        try:
            source = _disk_source(disk)
        except (OSError, MachineError) as exc:
            notes.append(f"disk {disk} skipped: {exc}")
            continue
        argv += ["-drive", f"if=none,id=disk{index},{source},readonly=on",
                 "-device", f"virtio-blk-pci,drive=disk{index},"
                            f"addr={layout.disk_slot(index):#04x}"]
    if settings.nic:
        argv += _nic_args(machine, plan, notes)
    return argv, notes


def smbios_args(tables: SmbiosTables | None, slot: SlotBoot | None) -> list[str]:
    """QEMU's ``-smbios`` options: the domain's types 0 to 3 (type 0's version the slot's,
    which a trial changes), or without tables the slot's version alone. Empty strings
    are left out (the firmware shows them as not specified)."""
    if tables is None:
        return [] if slot is None else ["-smbios", f"type=0,version={_opt(slot.bios_version)}"]
    bios, system = tables.bios, tables.system
    fields: dict[int, tuple[tuple[str, str], ...]] = {
        0: (("vendor", bios.vendor),
            ("version", bios.version if slot is None else slot.bios_version),
            ("date", bios.release_date_text)),
        1: (("manufacturer", system.manufacturer), ("product", system.product_name),
            ("serial", system.serial_number), ("uuid", str(system.uuid)),
            ("sku", system.sku_number), ("family", system.family)),
        2: (("manufacturer", tables.baseboard.manufacturer),
            ("product", tables.baseboard.product_name),
            ("serial", tables.baseboard.serial_number), ("asset", tables.baseboard.asset_tag)),
        3: (("manufacturer", tables.chassis.manufacturer),
            ("serial", tables.chassis.serial_number), ("asset", tables.chassis.asset_tag)),
    }
    argv: list[str] = []
    for kind, pairs in fields.items():
        given = "".join(f",{name}={_opt(value)}" for name, value in pairs if value)
        argv += ["-smbios", f"type={kind}{given}"]
    return argv


def _disk_source(path: Path) -> str:
    """The -drive options of a read-only disk: a directory shown as a FAT drive, a qcow2
    image (refused with a backing or external data file: it would open other host files)
    or a raw image. OSError if it vanished or cannot be read."""
    if path.is_dir():
        return f"format=raw,file=fat:{_opt(path)}"
    with path.open("rb") as image:
        header = image.read(80)
    if header[:4] != _QCOW2_MAGIC:
        return f"format=raw,file={_opt(path)}"
    version, backing = struct.unpack_from(">IQ", header, 4) if len(header) >= 16 else (0, 0)
    incompatible = struct.unpack_from(">Q", header, 72)[0] if len(header) >= 80 else 0
    if version not in (2, 3) or (version == 3 and len(header) < 80):
        raise MachineError(f"qcow2 version {version} is not supported")
    if backing or (version == 3 and incompatible & _QCOW2_EXTERNAL_DATA):
        raise MachineError("a qcow2 image with a backing or external data file is refused")
    return f"format=qcow2,file={_opt(path)}"


def _nic_args(machine: MachineDir, plan: BootPlan | None, notes: list[str]) -> list[str]:
    """The virtio NIC (no option ROM: OVMF's own network stack boots it), its user-mode
    network, closed (``restrict=on``: the guest reaches nothing outside it, not the host's
    own services), with TFTP and an HTTP boot server (``httpboot``) forwarded at
    ``HTTP_BOOT_ADDRESS``, and OVMF's fw_cfg switches keeping only the network boot the
    plan asks for: IPv4 PXE for a PXE entry, the IPv4 stack (PXE and HTTP) for a PXE or
    HTTP entry, never IPv6 (its PXE and HTTP attempts would wait 60 s each)."""
    wanted = set()
    if plan is not None:
        image = plan.firmware
        named = {*image.order, *([image.boot_next] if image.boot_next is not None else [])}
        wanted = {entry.device for entry in image.entries if entry.number in named}
    pxe = BootDevice.PXE in wanted
    ipv4 = pxe or BootDevice.HTTP in wanted
    source = machine.network
    tftp, bootfile, http = source.tftp, source.bootfile, source.http
    if tftp is not None and not tftp.is_dir():
        notes.append(f"TFTP directory {tftp} skipped: it is gone")
        tftp = None
    if tftp is None:
        machine.empty_tftp.mkdir(mode=0o700, exist_ok=True)
        tftp, bootfile = machine.empty_tftp, None
    network = (f"user,id=net0,restrict=on,tftp={_opt(tftp)},"
               f"bootfile={_opt(bootfile or NO_BOOT_FILE)}")
    if http is not None and not http.is_dir():
        notes.append(f"HTTP boot directory {http} skipped: it is gone")
    elif http is not None:
        server = f"{sys.executable} -P -m {HTTPBOOT_MODULE} {http}"
        network += f",guestfwd=tcp:{HTTP_BOOT_ADDRESS}:80-cmd:{_opt(server)}"
    layout = machine.layout
    argv = ["-netdev", network,
            "-device", f"virtio-net-pci,netdev=net0,addr={layout.nic_slot:#04x},"
                       f"mac={layout.mac_text},romfile="]
    for name, on in (("IPv4Support", ipv4), ("IPv4PXESupport", pxe), ("IPv6Support", False),
                     ("IPv6PXESupport", False)):
        argv += ["-fw_cfg", f"name=opt/org.tianocore/{name},string={'yes' if on else 'no'}"]
    return argv


def _opt(value: object) -> str:
    """A value inside a QEMU option list (a comma is written twice)."""
    return str(value).replace(",", ",,")


_libc = ctypes.CDLL(None, use_errno=True)


def _die_with(parent: int) -> Callable[[], None]:
    def preexec() -> None:  # in the child, between fork and exec: no locks, no allocation
        if _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            os._exit(126)
        if os.getppid() != parent:  # the keeper died before prctl took effect
            os._exit(126)
    return preexec


class Guest:
    """A running QEMU; build it with ``start`` (returns it paused), then ``cont``."""

    def __init__(self, generation: int, process: subprocess.Popen[bytes],
                 options: PlatformOptions, post: Callable[[object], None]) -> None:
        self.generation = generation
        self.process = process
        self._options = options
        self._post = post
        self._shutdown_reason: str | None = None
        self._stopped = threading.Event()
        self._qmp: Qmp | None = None
        self._pumping: threading.Thread | None = None

    @classmethod
    def start(cls, generation: int, options: PlatformOptions, machine: MachineDir,
              console: ConsoleLog, post: Callable[[object], None],
              plan: BootPlan | None = None, *,
              on_output: Callable[[bytes], None] | None = None) -> Guest:
        """Spawn QEMU paused for ``plan``, pump its console (each chunk also to
        ``on_output``), connect its monitor. QmpError or OSError (with QEMU's own words
        when it said why) if it would not start."""
        machine.qmp_socket.unlink(missing_ok=True)
        argv, notes = qemu_argv(options, machine, plan)
        for note in notes:
            log.warning("%s", note)
            console.write(f"\r\nvbios: {note}\r\n".encode())
        qemu_log = _open_log(machine.qemu_log)
        start = os.fstat(qemu_log).st_size
        try:
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=qemu_log,
                close_fds=True, preexec_fn=_die_with(os.getpid()))
        finally:
            os.close(qemu_log)
        guest = cls(generation, process, options, post)
        assert process.stdout is not None
        guest._pumping = threading.Thread(target=guest._pump,
                                          args=(process.stdout, console, on_output),
                                          name=f"console-{generation}", daemon=True)
        guest._pumping.start()
        try:
            guest._qmp = Qmp.connect(machine.qmp_socket, on_event=guest._event,
                                     on_close=guest._closed, timeout=START_TIMEOUT,
                                     alive=lambda: process.poll() is None)
        except QmpError as exc:
            guest.kill()
            said = _said(machine.qemu_log, start)
            raise QmpError(f"QEMU would not start: {said or exc}") from None
        log.info("QEMU %d started (generation %d)", process.pid, generation)
        return guest

    @property
    def qmp(self) -> Qmp:
        assert self._qmp is not None
        return self._qmp

    def cont(self) -> None:
        """Let the paused guest run, and start its watchdog."""
        self.qmp.execute("cont")
        threading.Thread(target=self._watch, name=f"watchdog-{self.generation}",
                         daemon=True).start()

    def stop(self) -> None:
        """Hard off: ``quit`` over QMP, SIGKILL if QEMU does not go; returns once gone."""
        self._stopped.set()
        with contextlib.suppress(QmpError):  # closed while answering, or hung: killed below
            self.qmp.execute("quit", timeout=QUIT_TIMEOUT)
        try:
            self.process.wait(QUIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
        self.drain()

    def kill(self) -> None:
        self._stopped.set()
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()
        self.drain()

    def drain(self) -> None:
        """Everything the ended QEMU printed is in the console log (before what comes
        next, such as the next boot)."""
        if self._pumping is not None and self._pumping is not threading.current_thread():
            self._pumping.join(timeout=QUIT_TIMEOUT)

    def _event(self, message: Message) -> None:
        name = message.get("event")
        data = message.get("data")
        data = data if isinstance(data, dict) else {}
        log.debug("QEMU %d: event %s %s", self.process.pid, name, data)
        if name == "SHUTDOWN":
            reason = data.get("reason")
            self._shutdown_reason = reason if isinstance(reason, str) else "unknown"

    def _closed(self) -> None:
        """The monitor closed: QEMU is exiting (or already gone)."""
        try:
            self.process.wait(QUIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
        self._stopped.set()
        self._post(Exited(self.generation, self._shutdown_reason))

    def _pump(self, stream: IO[bytes], console: ConsoleLog,
              on_output: Callable[[bytes], None] | None) -> None:
        try:
            while chunk := os.read(stream.fileno(), 65536):
                console.write(chunk)
                if on_output is not None:
                    on_output(chunk)
        except (OSError, ValueError) as exc:
            log.warning("console of QEMU %d: %s", self.process.pid, exc)
        finally:
            stream.close()

    def _watch(self) -> None:
        """Poll query-status; a guest sick or unanswering for hang_timeout is bitten."""
        hang = self._options.hang_timeout
        healthy = time.monotonic()
        while not self._stopped.wait(self._options.watchdog_interval):
            now = time.monotonic()
            try:
                answer = self.qmp.execute("query-status",
                                          timeout=max(healthy + hang - now, 0.05))
                status = answer.get("status") if isinstance(answer, dict) else None
            except QmpClosed:
                return
            except QmpError:
                status = None
            now = time.monotonic()
            if status is not None and status not in SICK:
                healthy = now
            elif now - healthy >= hang and not self._stopped.is_set():
                why = f"QEMU was {status}" if status else "QEMU stopped answering"
                self._post(Bitten(self.generation, f"{why} for {hang:g} s"))
                return


def _open_log(path: Path) -> int:
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
    try:
        if path.stat().st_size > _LOG_KEEP:
            flags |= os.O_TRUNC
    except FileNotFoundError:
        pass
    return os.open(path, flags, 0o600)


def _said(path: Path, start: int) -> str:
    """QEMU's last message since ``start``, on one line."""
    try:
        with path.open("rb") as handle:
            handle.seek(start)
            text = handle.read(8192).decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""
