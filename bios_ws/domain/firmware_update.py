"""The firmware update rules: a domain's ESRT-style firmware state, and what an update does to it.

A domain's firmware is described as the UEFI ESRT describes a device's: one
``FirmwareEntry`` per firmware class (the capsule's UpdateImageTypeId) with its
FwVersion, its LowestSupportedVersion (the floor), the MonotonicCount of the
last capsule it accepted, LastAttemptVersion, LastAttemptStatus, and which of
its two slots (A or B) holds the image it boots.

The rules (UEFI "Firmware Update and Reporting", edk2 FmpDxe, fwupd; issue 13):

- a capsule of another firmware class is refused (INVALID_FORMAT);
- a FwVersion below the stored floor is refused (INCORRECT_VERSION), always:
  there is no force flag;
- a MonotonicCount not greater than the last accepted one for the class is
  refused (AUTH_ERROR: the count is signed with the image and is what makes a
  signature fresh, so a replayed or older signed capsule fails authentication);
- reinstalling the installed version is allowed, with a greater MonotonicCount;
- after a successful update the floor is max(stored floor, the image's own
  floor), FwVersion and the MonotonicCount are the image's, the active slot
  flips to the one the image was written to;
- after a rollback (the new image did not boot) or a failure nothing is raised:
  the active slot stays the previous one.

Which fields an attempt changes, as the ESRT records every attempt:

==========================  =========  ==============  ==============  =======
outcome                     FwVersion  floor           MonotonicCount  slot
==========================  =========  ==============  ==============  =======
refused/failed/rolled back  kept       kept            kept            kept
succeeded                   image's    max(kept, img)  image's         flipped
==========================  =========  ==============  ==============  =======

Every outcome sets LastAttemptVersion (the capsule's FwVersion) and
LastAttemptStatus; a refusal of a capsule of a class the domain does not have
changes nothing, since there is no entry to record it on.

Standard library only.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Protocol

from bios_ws.errors import CapsuleNotTrusted, InvalidCapsule

UINT32_MAX = 0xFFFF_FFFF
UINT64_MAX = 0xFFFF_FFFF_FFFF_FFFF

#: The firmware class (ESRT FwClass, a capsule's UpdateImageTypeId) of a domain's system
#: firmware: the image its machine boots (for a ``qemu`` machine, an OVMF code image).
SYSTEM_FIRMWARE_CLASS = uuid.UUID("5b7b6c1e-4f2a-4c59-9e0e-2f1d6a0c7b31")
#: The FwVersion and floor of the firmware a domain starts with (the installation's image).
INITIAL_FW_VERSION = 1
INITIAL_LOWEST_SUPPORTED_VERSION = 1


class ImageFacts(Protocol):
    """What the rules read of an update image: a ``VerifiedCapsule``, or an
    ``AcceptedImage`` kept with its job."""

    @property
    def firmware_class(self) -> uuid.UUID: ...

    @property
    def fw_version(self) -> int: ...

    @property
    def lowest_supported_version(self) -> int: ...

    @property
    def monotonic_count(self) -> int: ...


@dataclass(frozen=True, slots=True)
class AcceptedImage:
    """The facts of a verified capsule's image, as its job keeps them."""

    firmware_class: uuid.UUID
    fw_version: int
    lowest_supported_version: int
    monotonic_count: int


class LastAttemptStatus(IntEnum):
    """ESRT LastAttemptStatus: the outcome of the last update attempt (UEFI codes 0-8)."""

    SUCCESS = 0
    UNSUCCESSFUL = 1
    INSUFFICIENT_RESOURCES = 2
    INCORRECT_VERSION = 3
    INVALID_FORMAT = 4
    AUTH_ERROR = 5
    PWR_EVT_AC = 6
    PWR_EVT_BATT = 7
    UNSATISFIED_DEPENDENCIES = 8


class Slot(StrEnum):
    """One of the two firmware slots of a domain: one boots, the other receives an update."""

    A = "A"
    B = "B"

    @property
    def other(self) -> Slot:
        return Slot.B if self is Slot.A else Slot.A


@dataclass(frozen=True, slots=True)
class FirmwareEntry:
    """The state of one firmware class of a domain, as an ESRT entry shows it, plus its
    anti-replay counter and active slot. ``last_monotonic_count`` is None until a capsule
    has been accepted; the floor never exceeds FwVersion."""

    firmware_class: uuid.UUID
    fw_version: int
    lowest_supported_version: int
    last_monotonic_count: int | None = None
    last_attempt_version: int = 0
    last_attempt_status: LastAttemptStatus = LastAttemptStatus.SUCCESS
    active_slot: Slot = Slot.A

    def __post_init__(self) -> None:
        for name, value in (("FwVersion", self.fw_version),
                            ("LowestSupportedVersion", self.lowest_supported_version),
                            ("LastAttemptVersion", self.last_attempt_version)):
            if not 0 <= value <= UINT32_MAX:
                raise ValueError(f"{name} {value} is outside 0..{UINT32_MAX}")
        if self.last_monotonic_count is not None and not (
                0 <= self.last_monotonic_count <= UINT64_MAX):
            raise ValueError(f"MonotonicCount {self.last_monotonic_count} is outside"
                             f" 0..{UINT64_MAX}")
        if self.lowest_supported_version > self.fw_version:
            raise ValueError(f"LowestSupportedVersion {self.lowest_supported_version} is above"
                             f" FwVersion {self.fw_version}")

    @property
    def inactive_slot(self) -> Slot:
        """The slot an update is written to."""
        return self.active_slot.other


@dataclass(frozen=True, slots=True)
class FirmwareInventory:
    """A domain's firmware entries, one per firmware class (what GetFirmwareInventory lists)."""

    entries: tuple[FirmwareEntry, ...]

    def __post_init__(self) -> None:
        classes = [entry.firmware_class for entry in self.entries]
        if len(set(classes)) != len(classes):
            raise ValueError("a firmware class appears twice in one inventory")

    def __iter__(self) -> Iterator[FirmwareEntry]:
        return iter(self.entries)

    def entry(self, firmware_class: uuid.UUID) -> FirmwareEntry | None:
        """The entry of ``firmware_class``, or None when the domain has no such firmware."""
        return next((e for e in self.entries if e.firmware_class == firmware_class), None)

    def replaced(self, entry: FirmwareEntry) -> FirmwareInventory:
        """This inventory with the entry of ``entry``'s class replaced by ``entry``."""
        if self.entry(entry.firmware_class) is None:
            raise ValueError(f"no firmware class {entry.firmware_class} in this inventory")
        return FirmwareInventory(tuple(entry if e.firmware_class == entry.firmware_class else e
                                       for e in self.entries))


def initial_inventory() -> FirmwareInventory:
    """The inventory of a domain no update has touched: its system firmware, the
    installation's image in slot A, at ``INITIAL_FW_VERSION``."""
    return FirmwareInventory((FirmwareEntry(
        firmware_class=SYSTEM_FIRMWARE_CLASS, fw_version=INITIAL_FW_VERSION,
        lowest_supported_version=INITIAL_LOWEST_SUPPORTED_VERSION),))


def bios_version(fw_version: int) -> str:
    """How a FwVersion is shown to the guest (SMBIOS type 0 BIOS Version): ``vbios-1``."""
    return f"vbios-{fw_version}"


@dataclass(frozen=True, slots=True)
class UpdateDecision:
    """Whether a verified capsule may be installed, with the ESRT status and why, in words."""

    status: LastAttemptStatus
    message: str

    @property
    def accepted(self) -> bool:
        return self.status is LastAttemptStatus.SUCCESS


def judge_capsule(entry: FirmwareEntry, capsule: ImageFacts) -> UpdateDecision:
    """Accept ``capsule`` for the firmware ``entry`` describes, or refuse it: wrong firmware
    class, FwVersion below the floor, or MonotonicCount not above the last accepted one."""
    if capsule.firmware_class != entry.firmware_class:
        return UpdateDecision(
            LastAttemptStatus.INVALID_FORMAT,
            f"the capsule is for firmware class {capsule.firmware_class}, and this domain's"
            f" firmware class is {entry.firmware_class}: it is not an update of this firmware")
    if capsule.fw_version < entry.lowest_supported_version:
        return UpdateDecision(
            LastAttemptStatus.INCORRECT_VERSION,
            f"FwVersion {capsule.fw_version} is below the lowest supported version"
            f" {entry.lowest_supported_version} of this domain; a downgrade below the floor"
            " is never allowed")
    last = entry.last_monotonic_count
    if last is not None and capsule.monotonic_count <= last:
        return UpdateDecision(
            LastAttemptStatus.AUTH_ERROR,
            f"MonotonicCount {capsule.monotonic_count} is not greater than {last}, the last"
            " accepted for this firmware class: a replayed or older signed capsule is refused")
    return UpdateDecision(LastAttemptStatus.SUCCESS, _acceptance(entry, capsule))


def _acceptance(entry: FirmwareEntry, capsule: ImageFacts) -> str:
    if capsule.fw_version == entry.fw_version:
        change = f"reinstalls FwVersion {capsule.fw_version}"
    elif capsule.fw_version > entry.fw_version:
        change = f"updates FwVersion {entry.fw_version} to {capsule.fw_version}"
    else:
        change = (f"downgrades FwVersion {entry.fw_version} to {capsule.fw_version} (allowed:"
                  f" not below the lowest supported version {entry.lowest_supported_version})")
    return f"accepted: the capsule {change}; it goes to slot {entry.inactive_slot}"


def judge_capsule_for(inventory: FirmwareInventory, capsule: ImageFacts
                      ) -> UpdateDecision:
    """``judge_capsule`` against the entry of the capsule's class; a class the domain does not
    have is refused as INVALID_FORMAT."""
    entry = inventory.entry(capsule.firmware_class)
    if entry is None:
        known = ", ".join(str(e.firmware_class) for e in inventory) or "none"
        return UpdateDecision(
            LastAttemptStatus.INVALID_FORMAT,
            f"the capsule is for firmware class {capsule.firmware_class}, which this domain does"
            f" not have (its firmware classes: {known})")
    return judge_capsule(entry, capsule)


def attempt_status_of(error: InvalidCapsule | CapsuleNotTrusted) -> LastAttemptStatus:
    """The ESRT status of a capsule refused before the rules: a bad layout is INVALID_FORMAT,
    a signature that does not verify AUTH_ERROR."""
    if isinstance(error, CapsuleNotTrusted):
        return LastAttemptStatus.AUTH_ERROR
    return LastAttemptStatus.INVALID_FORMAT


def record_failed_attempt(entry: FirmwareEntry, attempted_version: int,
                          status: LastAttemptStatus) -> FirmwareEntry:
    """A refused, failed or rolled-back attempt: only LastAttemptVersion and LastAttemptStatus
    change; FwVersion, the floor, the MonotonicCount and the active slot are kept."""
    if status is LastAttemptStatus.SUCCESS:
        raise ValueError("a failed attempt cannot have the status SUCCESS")
    return dataclasses.replace(entry, last_attempt_version=attempted_version,
                               last_attempt_status=status)


def record_refusal(entry: FirmwareEntry, capsule: ImageFacts,
                   decision: UpdateDecision) -> FirmwareEntry:
    """The entry after ``decision`` refused ``capsule``: the attempt recorded, nothing else.
    A capsule of another firmware class leaves the entry as it is (it was not its attempt)."""
    if decision.accepted:
        raise ValueError("the decision accepted the capsule; there is no refusal to record")
    if capsule.firmware_class != entry.firmware_class:
        return entry
    return record_failed_attempt(entry, capsule.fw_version, decision.status)


def record_update_succeeded(entry: FirmwareEntry, capsule: ImageFacts) -> FirmwareEntry:
    """The entry once ``capsule``'s image has booted from the inactive slot: its FwVersion and
    MonotonicCount, the floor raised to max(stored, the image's own), the active slot flipped.

    The rules are checked again (one update runs at a time per domain, so they still hold);
    a capsule they refuse raises ``ValueError``."""
    decision = judge_capsule(entry, capsule)
    if not decision.accepted:
        raise ValueError(f"the capsule cannot complete an update: {decision.message}")
    return FirmwareEntry(
        firmware_class=entry.firmware_class,
        fw_version=capsule.fw_version,
        lowest_supported_version=max(entry.lowest_supported_version,
                                     capsule.lowest_supported_version),
        last_monotonic_count=capsule.monotonic_count,
        last_attempt_version=capsule.fw_version,
        last_attempt_status=LastAttemptStatus.SUCCESS,
        active_slot=entry.active_slot.other)


def record_update_rolled_back(entry: FirmwareEntry, capsule: ImageFacts) -> FirmwareEntry:
    """The entry after ``capsule``'s image did not boot and the previous slot took over: the
    attempt recorded as UNSUCCESSFUL, the version, floor, count and active slot kept."""
    return record_failed_attempt(entry, capsule.fw_version, LastAttemptStatus.UNSUCCESSFUL)
