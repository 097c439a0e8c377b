"""The platform port: a domain is a machine that starts, stops, resets and is observed.

One ``Platform`` adapter per machine kind (``simulated``: a state machine with
realistic transition times and no process; ``qemu``: a real QEMU + OVMF guest
under TCG). A domain's kind is recorded in the store; the power use case picks
the adapter. Standard library only.

Semantics every adapter keeps (``tests/platform_contract.py`` checks them):

- ``status`` is the live state: ``Off``, ``PoweringOn`` (started, not yet
  running its firmware), ``On``, ``PoweringOff`` (a graceful shutdown is
  waiting for the guest), ``Paused``.
- ``power_on`` boots a machine that is ``Off``; ``delay`` seconds pass first
  (state ``PoweringOn`` meanwhile). ``power_off(graceful=True)`` asks the guest
  (ACPI power button) and turns the power off hard when the guest has not
  obeyed within ``graceful_timeout`` (a firmware without OS never does);
  ``graceful=False`` turns it off at once. ``restart`` is off then on, the off
  part graceful or not. Requests return once the change is under way; they do
  not wait for a graceful shutdown. ``cause`` is what the request leaves on
  record (ManagementCommand, PowerButtonPress, PowerRestorePolicy).
- Right before every boot (a request, a restart, a guest's own reset, or
  power restore) the adapter calls ``hooks.before_boot(domain_id, cause)``:
  pending BIOS settings are applied there, and its answer is the ``BootPlan``
  a real machine carries out (its firmware store written, its options used;
  ``None``: boot as configured). After every run of its firmware, a real machine
  calls ``hooks.after_run(domain_id, state)`` with what the store holds (the
  firmware consumes BootNext), before the next ``before_boot``.
  When the machine changes state on its own (the guest powers off or resets
  itself, the process dies, the watchdog kills it, a graceful shutdown
  escalates), it calls ``hooks.on_event(domain_id, event)``.
- ``lock(domain_id)`` serialises requests on one machine across threads and
  processes; the power use case holds it for a whole request.
- The adapter never checks whether a request fits the state: the power use
  case does (``bios_ws.domain.power.check_request``).
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bios_ws.domain.firmware import BootPlan, FirmwareState
from bios_ws.domain.firmware_update import Slot
from bios_ws.domain.power import MachineKind, PowerState, ResetCause

__all__ = ["MAX_FAILED_TRIALS", "NO_HOOKS", "MachineEvent", "MachineHooks", "MachineKind",
           "Platform", "TrialOutcome"]


@dataclass(frozen=True)
class MachineEvent:
    """Something a machine did on its own: the state it reached, why, and when."""

    state: PowerState
    cause: ResetCause
    time: datetime


@dataclass(frozen=True)
class NetworkBoot:
    """What a machine's NIC boots from: a TFTP directory (and the PXE boot file in it),
    and a directory its HTTP boot server serves (the HTTP boot entry's URI names a file
    in it, at ``http://10.0.2.100/``). None: nothing, and that attempt fails quickly."""

    tftp: Path | None = None
    bootfile: str | None = None
    http: Path | None = None


@dataclass(frozen=True)
class TrialOutcome:
    """How a trial boot of a slot's new image ended: whether the firmware reached a boot
    attempt in time, and if not, why (in words)."""

    slot: Slot
    booted: bool
    reason: str = ""


#: Trial boots that may fail in a row before a machine gives up and turns off (an ``Off``
#: event, cause ``Crash``): a ``before_boot`` that kept planning trials of bad images would
#: otherwise boot forever.
MAX_FAILED_TRIALS = 3


def _nothing_read(domain_id: str, state: FirmwareState) -> None:
    return None


def _no_trial(domain_id: str, outcome: TrialOutcome) -> None:
    return None


@dataclass(frozen=True)
class MachineHooks:
    """What an adapter calls back: before every boot (the answer, if any, is the plan of
    that boot: the firmware image to write and the machine options to start with), on
    every event of its own, and after a run with what its firmware store holds then."""

    before_boot: Callable[[str, ResetCause], BootPlan | None]
    on_event: Callable[[str, MachineEvent], None]
    after_run: Callable[[str, FirmwareState], None] = _nothing_read
    after_trial: Callable[[str, TrialOutcome], None] = _no_trial


#: Hooks that do nothing (tests of an adapter alone).
NO_HOOKS = MachineHooks(before_boot=lambda domain_id, cause: None,
                        on_event=lambda domain_id, event: None)


def no_firmware(domain_id: str) -> str:
    """Why a machine in provisioning state S1 does not power on."""
    return (f"the machine {domain_id} has no firmware image yet (provisioning state S1): it"
            " gets one at its first contact (enrollment), or `vbios domain firmware-assign`")


class Platform(abc.ABC):
    """The machines of one kind."""

    kind: MachineKind

    @abc.abstractmethod
    def check_available(self) -> None:
        """PlatformUnavailable naming the missing package, if this kind cannot run here."""

    @abc.abstractmethod
    def create(self, domain_id: str, *, firmware: bool = True) -> None:
        """Prepare a new, powered-off machine (files and, unless ``firmware`` is False,
        its firmware image: a machine without one is in provisioning state S1, has only
        a loader, and does not power on until ``assign_firmware``)."""

    @abc.abstractmethod
    def has_firmware(self, domain_id: str) -> bool:
        """Whether the machine has a firmware image assigned."""

    @abc.abstractmethod
    def assign_firmware(self, domain_id: str) -> None:
        """Give the machine the installation's firmware image (nothing if it has one)."""

    @abc.abstractmethod
    def remove(self, domain_id: str) -> None:
        """Turn the machine off at once if it runs, and delete everything it had."""

    @abc.abstractmethod
    def status(self, domain_id: str) -> PowerState:
        """The live power state (``Off`` for a machine this adapter does not know)."""

    @abc.abstractmethod
    def power_on(self, domain_id: str, cause: ResetCause, *, delay: float = 0.0) -> None:
        """Boot an ``Off`` machine after ``delay`` seconds; ``cause`` goes to before_boot."""

    @abc.abstractmethod
    def power_off(self, domain_id: str, cause: ResetCause, *, graceful: bool) -> None:
        """Graceful: ACPI power button, hard off after the graceful timeout (an event with
        ``cause``). Else hard off at once."""

    @abc.abstractmethod
    def restart(self, domain_id: str, cause: ResetCause, *, graceful: bool) -> None:
        """Power off (gracefully or not), then boot again."""

    @abc.abstractmethod
    def pause(self, domain_id: str) -> None:
        """Freeze the running machine (``Paused``)."""

    @abc.abstractmethod
    def resume(self, domain_id: str) -> None:
        """Let a paused machine run again (``On``)."""

    @abc.abstractmethod
    def nmi(self, domain_id: str) -> None:
        """Inject a non-maskable interrupt into the running machine."""

    @abc.abstractmethod
    def cpu_seconds(self, domain_id: str) -> float | None:
        """Host CPU seconds the running machine has used (user and system, growing while
        it runs; a new count may start at a boot, as a new QEMU process does); None
        while it is Off."""

    @abc.abstractmethod
    def console(self, domain_id: str, *, limit: int = 65536) -> bytes:
        """The last ``limit`` bytes the machine printed on its serial console."""

    @abc.abstractmethod
    def lock(self, domain_id: str) -> AbstractContextManager[None]:
        """Serialise requests on one machine, across threads and processes."""

    # -- firmware slots (issue 13: A/B images, a new one tried at the next boot) --------

    @abc.abstractmethod
    def stage_firmware(self, domain_id: str, slot: Slot, image: bytes) -> str:
        """Write ``image`` as the firmware of ``slot`` (replacing what it held; the machine
        may run from the other slot meanwhile), read it back, and return the SHA-256 (hex)
        of what the slot now holds. MachineError if it cannot be written."""

    @abc.abstractmethod
    def firmware_digest(self, domain_id: str, slot: Slot) -> str | None:
        """The SHA-256 (hex) of the image ``slot`` holds; None while it holds the
        installation's image (nothing was ever written to it)."""

    # -- what the machine is made of (takes effect at its next boot) -------------------

    @abc.abstractmethod
    def attach_disk(self, domain_id: str, path: Path) -> None:
        """Attach a read-only disk: an image file, or a directory shown as a FAT drive.
        The first disk is the one the ``Disk`` boot option boots. MachineError if ``path``
        is missing or unreadable (nothing changes)."""

    @abc.abstractmethod
    def detach_disk(self, domain_id: str, path: Path) -> None:
        """Detach a disk; MachineError if it is not attached."""

    @abc.abstractmethod
    def disks(self, domain_id: str) -> list[Path]:
        """The attached disks, the boot disk first."""

    @abc.abstractmethod
    def set_network_boot(self, domain_id: str, source: NetworkBoot) -> None:
        """What the NIC's network boot fetches from (checked: MachineError, nothing
        changed). A guest's network is closed: it reaches only these sources."""

    @abc.abstractmethod
    def network_boot(self, domain_id: str) -> NetworkBoot:
        """The machine's network boot sources."""
