"""QEMU + OVMF machines under TCG: the ``qemu`` adapter of the platform port.

Each running machine is owned by its keeper process (``keeper``), which any
process reaches over the machine's control socket; this adapter creates and
removes machine directories, starts keepers and forwards requests to them. A
machine without a live keeper is Off. Keepers outlive the process that started
them, so a restarted service finds its running guests where they were.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

from bios_ws.config import PlatformOptions
from bios_ws.domain.firmware_update import Slot
from bios_ws.domain.power import PowerState, ResetCause
from bios_ws.errors import MachineError, PlatformUnavailable
from bios_ws.platform.disks import check_disk, check_network_boot
from bios_ws.platform.host_sensors import process_cpu_seconds
from bios_ws.platform.locks import machine_flock
from bios_ws.platform.port import MachineKind, NetworkBoot, Platform, no_firmware
from bios_ws.platform.qemu import control
from bios_ws.platform.qemu.console import read_console
from bios_ws.platform.qemu.keeper_args import KeeperArgs
from bios_ws.platform.qemu.layout import MachineDir, process_argv
from bios_ws.platform.qemu.varstore import DamagedStore, check_store, read_store, write_atomically
from bios_ws.platform.slots import slot_digest, write_slot

#: Seconds to wait for a keeper's answer, for a new keeper to boot its machine (store
#: checks, before_boot, QEMU's start), and for a keeper to exit after a hard off.
ANSWER_TIMEOUT = 60.0
START_TIMEOUT = 120.0
EXIT_TIMEOUT = 15.0
_KEEPER_LOG_KEEP = 256 * 1024


class QemuPlatform(Platform):
    """The QEMU machines under ``machines_dir``. ``hooks_factory`` ("module:function",
    ``factory(config, domain_id) -> MachineHooks``) builds each keeper's hooks; ``home``
    is the state directory keepers open (default: the parent of ``machines_dir``)."""

    kind = MachineKind.QEMU

    def __init__(self, machines_dir: Path, options: PlatformOptions, *, hooks_factory: str,
                 home: Path | None = None) -> None:
        self.machines_dir = Path(machines_dir).absolute()
        self.options = options
        self.hooks_factory = hooks_factory
        self.home = Path(home).absolute() if home is not None else self.machines_dir.parent

    def machine(self, domain_id: str) -> MachineDir:
        return MachineDir(self.machines_dir, domain_id)

    # -- the port --------------------------------------------------------------------

    def check_available(self) -> None:
        binary = self.options.qemu_binary
        found = (os.access(binary, os.X_OK) and os.path.isfile(binary)) if os.sep in binary \
            else shutil.which(binary) is not None
        if not found:
            raise PlatformUnavailable(f"QEMU is not installed ({binary} not found):"
                                      " apt-get install qemu-system-x86")
        for what, path in (("firmware", self.options.ovmf_code),
                           ("variable store template", self.options.ovmf_vars)):
            if not Path(path).is_file():
                raise PlatformUnavailable(f"the OVMF {what} {path} is missing:"
                                          " apt-get install ovmf")

    def create(self, domain_id: str, *, firmware: bool = True) -> None:
        """The machine's firmware image is its own OVMF variable store, made from the
        installation's template (the code is the shared, read-only OVMF build)."""
        self.check_available()
        machine = self.machine(domain_id)
        with self.lock(domain_id):
            if machine.exists:
                raise MachineError(f"the machine {domain_id} already exists in"
                                   f" {self.machines_dir}")
            data = self._template() if firmware else None  # refused before anything
            machine.path.chmod(0o700)
            if data is not None:
                self._write_firmware(machine, data)
            machine.save(machine.new_config())

    def has_firmware(self, domain_id: str) -> bool:
        machine = self.machine(domain_id)
        machine.load()  # refuses an unknown machine
        return machine.vars.is_file()

    def assign_firmware(self, domain_id: str) -> None:
        machine = self.machine(domain_id)
        with self.lock(domain_id):
            machine.load()
            if not machine.vars.is_file():
                self._write_firmware(machine, self._template())

    def _template(self) -> bytes:
        template = Path(self.options.ovmf_vars)
        try:
            data = read_store(template)
            check_store(data, expected_size=template.stat().st_size)
        except (OSError, DamagedStore) as exc:
            raise MachineError(f"the OVMF variable store template {template} is"
                               f" unusable: {exc}") from None
        return data

    @staticmethod
    def _write_firmware(machine: MachineDir, data: bytes) -> None:
        write_atomically(machine.good_vars, data)
        write_atomically(machine.vars, data)  # last: its presence means assigned

    def remove(self, domain_id: str) -> None:
        machine = self.machine(domain_id)
        with self.lock(domain_id):
            self.power_off(domain_id, ResetCause.MANAGEMENT_COMMAND, graceful=False)
            self._wait_gone(machine)
            run_dir = None
            with contextlib.suppress(MachineError):
                run_dir = machine.run_dir
            if run_dir is not None and run_dir != machine.path:
                shutil.rmtree(run_dir, ignore_errors=True)
            for child in machine.path.iterdir() if machine.path.is_dir() else ():
                if child.name != "lock":  # others may wait on it: it goes last
                    _remove(child)
        shutil.rmtree(machine.path, ignore_errors=True)

    def status(self, domain_id: str) -> PowerState:
        machine = self.machine(domain_id)
        if not machine.exists or machine.live_keeper() is None:
            return PowerState.OFF
        answer = self._ask(machine, {"op": "status"})
        return PowerState(answer["state"]) if answer else PowerState.OFF

    def power_on(self, domain_id: str, cause: ResetCause, *, delay: float = 0.0) -> None:
        self.check_available()
        machine = self.machine(domain_id)
        with self.lock(domain_id):
            machine.load()  # refuses an unknown machine
            if not machine.vars.is_file():
                raise MachineError(no_firmware(domain_id))
            if machine.live_keeper() is not None and self.status(domain_id) is not \
                    PowerState.OFF:
                raise MachineError(f"the machine {domain_id} is already running")
            self._wait_gone(machine)
            machine.keeper_error.unlink(missing_ok=True)
            process = self._spawn(machine, cause, delay)
            self._await_start(machine, process, booting=delay <= 0)

    def power_off(self, domain_id: str, cause: ResetCause, *, graceful: bool) -> None:
        """A machine without a keeper is off already: nothing to do. Nor is there for one
        whose keeper exits between the check and the request (it was turning off)."""
        machine = self.machine(domain_id)
        if machine.live_keeper() is None:
            return
        answer = self._ask(machine, {"op": "power_off", "graceful": graceful,
                                     "cause": cause.value})
        _check_answer("power_off", answer)
        if not graceful:
            self._wait_gone(machine)

    def restart(self, domain_id: str, cause: ResetCause, *, graceful: bool) -> None:
        self._request(self.machine(domain_id),
                      {"op": "restart", "graceful": graceful, "cause": cause.value})

    def pause(self, domain_id: str) -> None:
        self._request(self.machine(domain_id), {"op": "pause"})

    def resume(self, domain_id: str) -> None:
        self._request(self.machine(domain_id), {"op": "resume"})

    def nmi(self, domain_id: str) -> None:
        self._request(self.machine(domain_id), {"op": "nmi"})

    def console(self, domain_id: str, *, limit: int = 65536) -> bytes:
        return read_console(self.machine(domain_id).console, limit)

    def lock(self, domain_id: str) -> contextlib.AbstractContextManager[None]:
        return machine_flock(self.machine(domain_id).path)

    # -- firmware slots -------------------------------------------------------------------

    def stage_firmware(self, domain_id: str, slot: Slot, image: bytes) -> str:
        """The image becomes the slot's file (firmware-A.fd or firmware-B.fd); a QEMU running
        from that slot keeps the file it opened."""
        machine = self.machine(domain_id)
        with self.lock(domain_id):
            machine.load()  # refuses an unknown machine
            return write_slot(machine.slot_image(Slot(slot)), image)

    def firmware_digest(self, domain_id: str, slot: Slot) -> str | None:
        machine = self.machine(domain_id)
        machine.load()
        return slot_digest(machine.slot_image(Slot(slot)))

    # -- disks ---------------------------------------------------------------------------

    def attach_directory_disk(self, domain_id: str, path: Path) -> None:
        """Give the machine a read-only FAT disk showing ``path`` (from its next boot)."""
        if not Path(path).is_dir():
            raise MachineError(f"{path} is not a directory")
        self.attach_disk(domain_id, path)

    def directory_disks(self, domain_id: str) -> list[Path]:
        return self.disks(domain_id)

    def attach_disk(self, domain_id: str, path: Path) -> None:
        disk = str(check_disk(path))
        machine = self.machine(domain_id)
        with self.lock(domain_id):
            config = machine.load()
            disks = [str(d) for d in machine.disks]
            if disk not in disks:
                config["disks"] = [*disks, disk]
                machine.save(config)

    def detach_disk(self, domain_id: str, path: Path) -> None:
        disk = str(Path(path).expanduser().absolute())
        machine = self.machine(domain_id)
        with self.lock(domain_id):
            config = machine.load()
            disks = [str(d) for d in machine.disks]
            if disk not in disks:
                raise MachineError(f"{disk} is not attached to {domain_id}")
            config["disks"] = [d for d in disks if d != disk]
            machine.save(config)

    def disks(self, domain_id: str) -> list[Path]:
        return self.machine(domain_id).disks

    def set_network_boot(self, domain_id: str, source: NetworkBoot) -> None:
        tftp, bootfile, http = check_network_boot(source.tftp, source.bootfile, source.http)
        machine = self.machine(domain_id)
        with self.lock(domain_id):
            config = machine.load()
            config["network"] = {"tftp": None if tftp is None else str(tftp),
                                 "bootfile": bootfile,
                                 "http": None if http is None else str(http)}
            machine.save(config)

    def network_boot(self, domain_id: str) -> NetworkBoot:
        return self.machine(domain_id).network

    # -- keepers -------------------------------------------------------------------------

    def keeper_pid(self, domain_id: str) -> int | None:
        """The pid of the machine's live keeper, if one runs."""
        return self.machine(domain_id).live_keeper()

    def cpu_seconds(self, domain_id: str) -> float | None:
        """The CPU seconds of the machine's QEMU process (a new one at every boot)."""
        pid = self.qemu_pid(domain_id)
        return None if pid is None else process_cpu_seconds(pid)

    def qemu_pid(self, domain_id: str) -> int | None:
        """The pid of the machine's QEMU, if one runs."""
        machine = self.machine(domain_id)
        if not machine.exists or machine.live_keeper() is None:
            return None
        answer = self._ask(machine, {"op": "status"})
        pid = answer.get("qemu_pid") if answer else None
        return pid if isinstance(pid, int) else None

    def _spawn(self, machine: MachineDir, cause: ResetCause,
               delay: float) -> subprocess.Popen[bytes]:
        argv = KeeperArgs(self.home, self.machines_dir, machine.domain_id, cause, delay,
                          self.hooks_factory, self.options).argv()
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
        with contextlib.suppress(FileNotFoundError):
            if machine.keeper_log.stat().st_size > _KEEPER_LOG_KEEP:
                flags |= os.O_TRUNC
        log = os.open(machine.keeper_log, flags, 0o600)
        try:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                       cwd="/", close_fds=True, start_new_session=True)
        finally:
            os.close(log)
        # reap it when it exits, should this process still run then
        threading.Thread(target=process.wait, name="keeper-reaper", daemon=True).start()
        return process

    def _await_start(self, machine: MachineDir, process: subprocess.Popen[bytes], *,
                     booting: bool) -> None:
        """Wait until the new keeper answers (and, when it boots at once, runs its machine);
        MachineError with its reason if it gives up."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise MachineError(_reason(machine, process.returncode))
            if machine.live_keeper() == process.pid:
                answer = self._ask(machine, {"op": "status"})
                state = PowerState(answer["state"]) if answer else PowerState.OFF
                if not booting or state not in (PowerState.POWERING_ON, PowerState.OFF):
                    return
            time.sleep(0.02)
        _kill_keeper(machine)
        raise MachineError(f"the machine {machine.domain_id} did not start within"
                           f" {START_TIMEOUT:g} s (see {machine.keeper_log})")

    def _request(self, machine: MachineDir, request: control.Message) -> None:
        if machine.live_keeper() is None:
            raise MachineError(f"cannot {request['op']}: the machine {machine.domain_id}"
                               " is Off")
        _check_answer(request["op"], self._ask(machine, request))

    def _ask(self, machine: MachineDir, request: control.Message) -> control.Message | None:
        """The keeper's answer; None when it has gone away (the machine is Off)."""
        try:
            return control.ask(machine.keeper_socket, request, timeout=ANSWER_TIMEOUT)
        except control.KeeperGone:
            return None
        except (TimeoutError, ValueError, OSError) as exc:
            raise MachineError(f"the keeper of {machine.domain_id} does not answer:"
                               f" {exc}") from None

    def _wait_gone(self, machine: MachineDir) -> None:
        """Wait for a keeper that is turning its machine off to exit; kill one that hangs."""
        pid = machine.live_keeper()
        deadline = time.monotonic() + EXIT_TIMEOUT
        while machine.keeper_running():  # its lock outlives its pid file
            if time.monotonic() > deadline:
                pid = pid or machine.live_keeper()
                if pid is not None and machine.keeper_argv_matches(process_argv(pid)):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)  # its QEMU dies with it
                deadline = time.monotonic() + EXIT_TIMEOUT
            time.sleep(0.02)


def _kill_keeper(machine: MachineDir) -> None:
    pid = machine.live_keeper()
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # its QEMU dies with it


def _reason(machine: MachineDir, returncode: int) -> str:
    try:
        said = machine.keeper_error.read_text(encoding="utf-8")[:2000].strip()
    except OSError:
        said = ""
    return said or (f"the keeper of {machine.domain_id} exited with status {returncode}"
                    f" (see {machine.keeper_log})")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _check_answer(op: str, answer: control.Message | None) -> None:
    """MachineError when the keeper refused ``op`` (None: it has gone, the machine is Off)."""
    if answer is not None and not answer.get("ok"):
        raise MachineError(f"{op}: {answer.get('error', 'refused')}")
