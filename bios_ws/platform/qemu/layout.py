"""Where a QEMU machine keeps its files, and how to tell its keeper is alive.

``machines_dir/<domain>/`` (0700) holds::

    vars.fd          the machine's own OVMF variable store (copied from the template)
    vars.good.fd     the last copy that passed the checks before a boot
    vars.prev.fd     the store as it was before a boot plan was last written into it
    vars.booted      present from a QEMU start until the store was read back after the run
    vars.trial.fd    the store as it was when a trial boot of a new firmware image began
                     (put back if the image does not boot)
    firmware-A.fd    the firmware slots' images (``bios_ws.platform.slots``; a slot without
    firmware-B.fd    its file holds the installation's OVMF code)
    machine.json     its configuration: read-only disks (image files or directories), the
                     network boot source, where its sockets live
    tftp-none/       an empty TFTP directory (a NIC without a network boot source)
    keeper.pid       the keeper's pid while it runs (written once it listens)
    keeper.lock      flocked by the keeper for its whole life: one keeper per machine,
                     and free only once the keeper process has exited
    keeper.error     why the last keeper could not boot the machine (one line)
    keeper.log       the keeper's own log; qemu.log: QEMU's messages
    console.log      the serial console, rotated into console.log.1
    lock             the machine's flock (``bios_ws.platform.locks``)

The sockets (``keeper.sock``, ``qmp.sock``) live in the machine directory when
the path fits a unix socket address, else in a short private directory under the
system's temporary directory, recorded in machine.json and removed with the
machine.

Every machine has the same fixed hardware layout (``MachineLayout``; q35, QEMU
``-nodefaults``, every device on the root bus ``pcie.0``), because the boot
entries written into its store point at these places and QEMU puts the devices
there (no ``bootindex`` anywhere)::

    00:00.0   q35 host bridge                        (built in)
    00:03.0   virtio-net-pci, MAC 52:54:00:xx:xx:xx   only when the plan asks for a NIC
    00:04.0   virtio-blk-pci: disk 0 (the Disk boot entry's disk), 00:05.0 disk 1, ...
              up to 00:13.0 (disk i always at 0x04 + i, even when an earlier disk is
              missing at boot: the Disk entry never boots another disk by accident)
    00:1f.0   ICH9 LPC, 00:1f.3 SMBus                (built in)
    00:1f.2   ICH9 AHCI (built in): the CD-ROM on its port 0, always present, empty

The MAC is 52:54:00 followed by the first three bytes of SHA-256(domain id): 0x52 has
the locally administered bit set and the multicast bit clear, and a domain keeps its
MAC across boots and restarts of the service.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bios_ws.domain.firmware_update import Slot
from bios_ws.errors import MachineError
from bios_ws.platform.port import NetworkBoot
from bios_ws.platform.qemu.keeper_args import KEEPER_MODULE
from bios_ws.platform.slots import slot_file

MACHINE_FORMAT = 1
#: sun_path holds 108 bytes with its terminating NUL; the longest name is keeper.sock.
_SOCKET_PATH_MAX = 100
_MAX_CONFIG_BYTES = 64 * 1024
NIC_SLOT = 0x03
FIRST_DISK_SLOT = 0x04
MAX_DISKS = 16
#: q35's built-in ICH9 AHCI controller (device, function); the CD-ROM is on port 0.
AHCI = (0x1F, 0x2)
CDROM_PORT = 0


@dataclass(frozen=True)
class MachineLayout:
    """Where a machine's devices sit (see the module docstring)."""

    mac: bytes
    nic_slot: int = NIC_SLOT
    first_disk_slot: int = FIRST_DISK_SLOT
    max_disks: int = MAX_DISKS
    ahci: tuple[int, int] = AHCI
    cdrom_port: int = CDROM_PORT

    @classmethod
    def of(cls, domain_id: str) -> MachineLayout:
        return cls(mac=b"\x52\x54\x00" + hashlib.sha256(domain_id.encode()).digest()[:3])

    @property
    def mac_text(self) -> str:
        """The MAC as QEMU writes it (52:54:00:12:34:56)."""
        return ":".join(f"{byte:02x}" for byte in self.mac)

    def disk_slot(self, index: int) -> int:
        return self.first_disk_slot + index


@dataclass(frozen=True)
class MachineDir:
    """The files of one machine."""

    machines_dir: Path
    domain_id: str

    @property
    def path(self) -> Path:
        return self.machines_dir / self.domain_id

    @property
    def vars(self) -> Path:
        return self.path / "vars.fd"

    @property
    def good_vars(self) -> Path:
        return self.path / "vars.good.fd"

    @property
    def prev_vars(self) -> Path:
        return self.path / "vars.prev.fd"

    @property
    def trial_vars(self) -> Path:
        return self.path / "vars.trial.fd"

    def slot_image(self, slot: Slot) -> Path:
        """The file of ``slot``'s image (absent: the installation's image)."""
        return slot_file(self.path, slot)

    @property
    def booted_marker(self) -> Path:
        return self.path / "vars.booted"

    @property
    def empty_tftp(self) -> Path:
        return self.path / "tftp-none"

    @property
    def layout(self) -> MachineLayout:
        return MachineLayout.of(self.domain_id)

    @property
    def config_file(self) -> Path:
        return self.path / "machine.json"

    @property
    def keeper_pid(self) -> Path:
        return self.path / "keeper.pid"

    @property
    def keeper_lock(self) -> Path:
        return self.path / "keeper.lock"

    @property
    def keeper_error(self) -> Path:
        return self.path / "keeper.error"

    @property
    def keeper_log(self) -> Path:
        return self.path / "keeper.log"

    @property
    def qemu_log(self) -> Path:
        return self.path / "qemu.log"

    @property
    def console(self) -> Path:
        return self.path / "console.log"

    @property
    def exists(self) -> bool:
        return self.config_file.is_file()

    # -- machine.json ---------------------------------------------------------------

    def load(self) -> dict[str, object]:
        try:
            with self.config_file.open("rb") as handle:
                data = json.loads(handle.read(_MAX_CONFIG_BYTES + 1))
        except FileNotFoundError:
            raise MachineError(f"no machine {self.domain_id} in {self.machines_dir}") from None
        except (OSError, ValueError):
            raise MachineError(f"{self.config_file} is unreadable or damaged") from None
        if not isinstance(data, dict) or data.get("format") != MACHINE_FORMAT:
            raise MachineError(f"{self.config_file} has an unsupported format")
        return data

    def save(self, data: dict[str, object]) -> None:
        tmp = self.config_file.with_name(f".machine.json.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        tmp.chmod(0o600)
        os.replace(tmp, self.config_file)

    def new_config(self) -> dict[str, object]:
        """A fresh configuration: no disks, sockets here or in a short private directory."""
        run_dir = self.path
        if len(os.fsencode(self.path / "keeper.sock")) > _SOCKET_PATH_MAX:
            run_dir = Path(tempfile.mkdtemp(prefix="vbios-"))
        return {"format": MACHINE_FORMAT, "disks": [], "run_dir": str(run_dir)}

    @property
    def run_dir(self) -> Path:
        value = self.load().get("run_dir")
        if not isinstance(value, str) or not value.startswith("/"):
            raise MachineError(f"{self.config_file} names no socket directory")
        return Path(value)

    @property
    def disks(self) -> list[Path]:
        value = self.load().get("disks", [])
        if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
            raise MachineError(f"{self.config_file} has a damaged disk list")
        return [Path(d) for d in value]

    @property
    def network(self) -> NetworkBoot:
        """What the NIC's network boot fetches from."""
        network = self.load().get("network")
        if not isinstance(network, dict):
            return NetworkBoot()
        tftp, bootfile, http = (network.get(key) for key in ("tftp", "bootfile", "http"))
        return NetworkBoot(Path(tftp) if isinstance(tftp, str) else None,
                           bootfile if isinstance(bootfile, str) else None,
                           Path(http) if isinstance(http, str) else None)

    @property
    def keeper_socket(self) -> Path:
        return self.run_dir / "keeper.sock"

    @property
    def qmp_socket(self) -> Path:
        return self.run_dir / "qmp.sock"

    # -- the keeper process -----------------------------------------------------------

    def keeper_argv_matches(self, argv: list[str]) -> bool:
        """Whether a process's argument vector is this machine's keeper."""
        return (KEEPER_MODULE in argv and _value(argv, "--domain") == self.domain_id
                and _value(argv, "--machines-dir") == str(self.machines_dir))

    def live_keeper(self) -> int | None:
        """The pid of this machine's running keeper, or None. A pid is trusted only if
        /proc shows it running our keeper for this very machine (never a recycled pid)."""
        try:
            pid = int(self.keeper_pid.read_text(encoding="ascii")[:32].strip())
        except (OSError, ValueError):
            return None
        return pid if pid > 0 and self.keeper_argv_matches(process_argv(pid)) else None


    def keeper_running(self) -> bool:
        """Whether a keeper process (starting, running or exiting) holds the machine."""
        try:
            fd = os.open(self.keeper_lock, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False


def process_argv(pid: int) -> list[str]:
    """A live process's argument vector from /proc ([] if gone, a zombie, or unreadable)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            raw = handle.read(256 * 1024)
    except OSError:
        return []
    return [os.fsdecode(part) for part in raw.split(b"\0")[:-1]]


def _value(argv: list[str], flag: str) -> str | None:
    try:
        return argv[argv.index(flag) + 1]
    except (ValueError, IndexError):
        return None
