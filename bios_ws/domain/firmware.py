"""What a machine's firmware gets before each boot, and what it shows after a run.

Before every boot the power use case hands the machine a ``BootPlan``: the
firmware image (UEFI boot entries, BootOrder, BootNext, Secure Boot keys and
switch, the published attributes) and the machine options the settings decide
(vCPUs, a NIC, the serial console). A real machine writes the image into its
variable store while it is not running and starts with the options; after a
run, its store is read back as ``FirmwareState`` (the firmware consumes
BootNext; a firmware in setup mode may have keys enrolled from inside).

Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from bios_ws.domain.firmware_update import Slot
from bios_ws.domain.smbios import SmbiosTables

#: The vendor GUID of the variable that publishes a domain's BIOS attributes to its
#: firmware and OS (Linux: /sys/firmware/efi/efivars/VbiosAttributes-<guid>).
VBIOS_VENDOR_GUID = "7f3c4a52-1e0b-4c6e-9a53-0d0f2b1e5c11"
PUBLISHED_VARIABLE = "VbiosAttributes"
#: Secure Boot databases, as UEFI names them.
DATABASES = ("PK", "KEK", "db", "dbx")


class BootDevice(StrEnum):
    """What a boot entry points at; each kind has a fixed place on the machine."""

    DISK = "disk"      # the first virtio disk: \\EFI\\BOOT\\BOOTX64.EFI on it
    CDROM = "cdrom"    # the SATA CD-ROM
    PXE = "pxe"        # the NIC, PXE over IPv4
    HTTP = "http"      # the NIC, UEFI HTTP boot from a URI
    SHELL = "shell"    # the firmware's built-in EFI shell


class SecureBootCurrent(StrEnum):
    """What the firmware enforced at the current or last boot."""

    ENABLED = "Enabled"
    DISABLED = "Disabled"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class BootEntry:
    """One UEFI load option ``Boot####`` (``number``), described by ``description``."""

    number: int
    option_id: str
    description: str
    device: BootDevice
    active: bool = True
    #: For HTTP boot: the URI the firmware fetches.
    uri: str | None = None


@dataclass(frozen=True)
class KeyDatabases:
    """X.509 certificates (DER) of each Secure Boot database."""

    pk: tuple[bytes, ...] = ()
    kek: tuple[bytes, ...] = ()
    db: tuple[bytes, ...] = ()
    dbx: tuple[bytes, ...] = ()

    def of(self, database: str) -> tuple[bytes, ...]:
        return {"PK": self.pk, "KEK": self.kek, "db": self.db, "dbx": self.dbx}[database]

    @property
    def setup_mode(self) -> bool:
        """No platform key: the firmware is in setup mode and enforces nothing."""
        return not self.pk


def enforcing(secure_boot_enable: bool, keys: KeyDatabases) -> bool:
    """The firmware's rule (OVMF, measured): it enforces signatures when Secure Boot is
    enabled and a platform key is enrolled; without a PK it is in setup mode."""
    return secure_boot_enable and not keys.setup_mode


@dataclass(frozen=True)
class FirmwareImage:
    entries: tuple[BootEntry, ...]
    #: Entry numbers, first tried first.
    order: tuple[int, ...]
    boot_next: int | None
    secure_boot_enable: bool
    keys: KeyDatabases
    #: The content of the ``VbiosAttributes`` variable.
    published: bytes


@dataclass(frozen=True)
class MachineOptions:
    """What the settings decide about the machine itself, at power-on."""

    cpus: int = 1
    threads_per_core: int = 1
    #: A NIC (PXE and HTTP boot need one).
    nic: bool = True
    #: The serial console (off: the firmware prints nowhere).
    serial: bool = True


@dataclass(frozen=True)
class SlotBoot:
    """Which of the domain's two firmware slots the machine boots, and the BIOS version
    the guest is shown (SMBIOS type 0). A slot the domain never had an update written
    to holds the installation's image.

    ``trial``: the image in ``slot`` has not booted yet. The machine must show that it
    reaches a boot attempt within the adapter's trial timeout; it then tells
    ``MachineHooks.after_trial`` whether it did, and when it did not (or the machine
    failed first) it boots again at once, from the plan ``before_boot`` gives then."""

    slot: Slot
    bios_version: str
    trial: bool = False
    #: The SHA-256 (hex) the slot's image must have: a trial of a slot holding anything
    #: else fails at once (None: not checked).
    expected_sha256: str | None = None


@dataclass(frozen=True)
class BootPlan:
    firmware: FirmwareImage
    machine: MachineOptions = field(default_factory=MachineOptions)
    #: The firmware slot to boot (None: the installation's image, as before slots).
    slot: SlotBoot | None = None
    #: The SMBIOS tables (types 0-3) the firmware shows the OS (None: the machine's own).
    smbios: SmbiosTables | None = None


@dataclass(frozen=True)
class FirmwareState:
    """A variable store read back after the machine ran."""

    boot_order: tuple[int, ...]
    boot_next: int | None
    secure_boot_enable: bool
    keys: KeyDatabases
