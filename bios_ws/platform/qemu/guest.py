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
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bios_ws.config import PlatformOptions
from bios_ws.platform.qemu.console import ConsoleLog
from bios_ws.platform.qemu.layout import MachineDir
from bios_ws.platform.qemu.qmp import Message, Qmp, QmpClosed, QmpError

log = logging.getLogger("bios_ws.platform.qemu")

PR_SET_PDEATHSIG = 1
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


def qemu_argv(options: PlatformOptions, machine: MachineDir, disks: list[Path]) -> list[str]:
    """QEMU's command line for ``machine``: TCG, q35, no defaults, paused (``-S``)."""
    argv = [
        options.qemu_binary, "-name", f"vbios-{_opt(machine.domain_id)}",
        "-accel", "tcg", "-machine", "q35", "-nodefaults", "-no-user-config",
        "-display", "none", "-m", str(int(options.memory_mib)),
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={_opt(options.ovmf_code)}",
        "-drive", f"if=pflash,format=raw,unit=1,file={_opt(machine.vars)}",
        "-no-reboot", "-S",
        "-chardev", "stdio,id=console,signal=off", "-serial", "chardev:console",
        "-qmp", f"unix:{_opt(machine.qmp_socket)},server=on,wait=off",
    ]
    for index, disk in enumerate(disks):
        argv += ["-drive", f"if=none,id=d{index},format=raw,file=fat:{_opt(disk)},readonly=on",
                 "-device", f"virtio-blk-pci,drive=d{index}"]
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

    @classmethod
    def start(cls, generation: int, options: PlatformOptions, machine: MachineDir,
              console: ConsoleLog, post: Callable[[object], None]) -> Guest:
        """Spawn QEMU paused, pump its console, connect its monitor. QmpError or OSError
        (with QEMU's own words when it said why) if it would not start."""
        machine.qmp_socket.unlink(missing_ok=True)
        argv = qemu_argv(options, machine, machine.disks)
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
        threading.Thread(target=guest._pump, args=(process.stdout, console),
                         name=f"console-{generation}", daemon=True).start()
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

    def kill(self) -> None:
        self._stopped.set()
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()

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

    def _pump(self, stream: IO[bytes], console: ConsoleLog) -> None:
        try:
            while chunk := os.read(stream.fileno(), 65536):
                console.write(chunk)
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
