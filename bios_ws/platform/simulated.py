"""The simulated machine: no process, a power state machine with realistic transition times.

A simulated machine's state is a record (``SimState``) of where it is and
which steps are scheduled (boot, running, off), kept in a ``StateShelf``: in
memory (tests) or as a JSON file per machine in the state directory, so every
worker process sees the same machine. Whoever touches a machine first plays
the steps whose time has come (under the machine's lock), calling the hooks as
a real machine would: ``before_boot`` when a boot starts, ``on_event`` when a
graceful shutdown escalates to off; and a serving process runs a ``Ticker``
that plays the due steps of every machine on time, so a scheduled boot
applies its pending settings even when nobody looks. (With no server running,
simulated machines stand still until touched: the service is their power.)

The simulated guest runs firmware only, like a fresh QEMU + OVMF guest: it
ignores the ACPI power button, so a graceful shutdown always escalates. Its CPU use
follows its state as a QEMU guest's does under TCG (``CPU_USE``): one core while its
firmware boots, a few percent while the boot manager waits.

Firmware slots (issue 13): a boot whose plan has a ``SlotBoot`` with ``trial`` tries that
slot's image. At the end of the boot (``boot_seconds`` after it began) the image "reaches a
boot attempt" when it is a UEFI firmware volume (``is_firmware_volume``; a slot never
written holds the installation's image, which does): ``after_trial`` hears it booted, and
the machine runs. Otherwise ``after_trial`` hears why not, and the machine boots again at
once from the plan ``before_boot`` gives then (as a QEMU machine does). A trial cut short
by a power off or a restart is reported as not booted.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from bios_ws.domain.firmware import BootPlan, SlotBoot
from bios_ws.domain.firmware_update import Slot
from bios_ws.domain.firmware_volume import is_firmware_volume
from bios_ws.domain.power import PowerState, ResetCause
from bios_ws.errors import MachineError
from bios_ws.periodic import Periodic
from bios_ws.platform.disks import check_disk, check_network_boot
from bios_ws.platform.port import (
    MAX_FAILED_TRIALS,
    NO_HOOKS,
    MachineEvent,
    MachineHooks,
    MachineKind,
    NetworkBoot,
    Platform,
    TrialOutcome,
    no_firmware,
)
from bios_ws.platform.simulated_state import (
    CONSOLE_LINES,
    FileShelf,
    SimState,
    StateShelf,
    Step,
)
from bios_ws.platform.slots import check_staged

__all__ = ["FileShelf", "SimState", "SimulatedPlatform", "StateShelf", "Ticker",
           "in_memory_machines"]

log = logging.getLogger("bios_ws.platform")

#: Seconds from power-on to running firmware (a TCG guest takes 4 to 9 s to its first boot
#: attempt; a simulated one is quicker by default).
DEFAULT_BOOT_SECONDS = 2.0
DEFAULT_GRACEFUL_TIMEOUT = 30.0
#: Host cores a simulated machine keeps busy in each state (measured on a TCG guest: a
#: booting OVMF takes one core, its boot manager waiting for a key about 3 %).
CPU_USE = {PowerState.OFF: 0.0, PowerState.POWERING_ON: 1.0, PowerState.ON: 0.03,
           PowerState.POWERING_OFF: 0.03, PowerState.PAUSED: 0.0}

Clock = Callable[[], float]


class SimulatedPlatform(Platform):
    """Simulated machines on ``shelf``; ``clock`` gives seconds since the epoch."""

    kind = MachineKind.SIMULATED

    def __init__(
        self, shelf: StateShelf, hooks: MachineHooks, *, clock: Clock = time.time,
        boot_seconds: float = DEFAULT_BOOT_SECONDS,
        graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT,
    ) -> None:
        self._shelf = shelf
        self._hooks = hooks
        self._clock = clock
        self.boot_seconds = boot_seconds
        self.graceful_timeout = graceful_timeout

    def check_available(self) -> None:
        return None

    def create(self, domain_id: str, *, firmware: bool = True) -> None:
        with self.lock(domain_id):
            self._shelf.save(domain_id, SimState(firmware=firmware))

    def has_firmware(self, domain_id: str) -> bool:
        with self._machine(domain_id) as machine:
            return machine.firmware

    def assign_firmware(self, domain_id: str) -> None:
        with self._machine(domain_id) as machine:
            if not machine.firmware:
                machine.firmware = True
                _say(machine, "firmware image assigned")

    def remove(self, domain_id: str) -> None:
        with self.lock(domain_id):
            self._shelf.delete(domain_id)
        self._shelf.forget(domain_id)

    def status(self, domain_id: str) -> PowerState:
        with self._machine(domain_id) as machine:
            return PowerState(machine.state)

    def power_on(self, domain_id: str, cause: ResetCause, *, delay: float = 0.0) -> None:
        with self._machine(domain_id) as machine:
            if not machine.firmware:
                raise MachineError(no_firmware(domain_id))
            now = self._clock()
            machine.state = PowerState.POWERING_ON.value
            machine.failed_trials = 0
            machine.steps = self._boot_steps(now + max(delay, 0.0), cause)
        self.status(domain_id)  # an immediate boot starts now

    def power_off(self, domain_id: str, cause: ResetCause, *, graceful: bool) -> None:
        with self._machine(domain_id) as machine:
            if graceful:
                machine.state = PowerState.POWERING_OFF.value
                machine.steps = [Step(self._clock() + self.graceful_timeout, "off", cause)]
                _say(machine, "ACPI power button pressed (no OS: ignored)")
            else:
                self._cut_trial(domain_id, machine, "the machine was turned off")
                _off(machine, "power off")

    def restart(self, domain_id: str, cause: ResetCause, *, graceful: bool) -> None:
        with self._machine(domain_id) as machine:
            now = self._clock()
            if graceful:
                escalate = now + self.graceful_timeout
                machine.state = PowerState.POWERING_OFF.value
                machine.steps = [Step(escalate, "off", cause), *self._boot_steps(escalate, cause)]
                _say(machine, "ACPI power button pressed (no OS: ignored)")
            else:
                self._cut_trial(domain_id, machine, "the machine was restarted")
                _off(machine, "reset")
                machine.state = PowerState.POWERING_ON.value
                machine.steps = self._boot_steps(now, cause)
        self.status(domain_id)

    def pause(self, domain_id: str) -> None:
        with self._machine(domain_id) as machine:
            machine.state = PowerState.PAUSED.value

    def resume(self, domain_id: str) -> None:
        with self._machine(domain_id) as machine:
            machine.state = PowerState.ON.value

    def nmi(self, domain_id: str) -> None:
        with self._machine(domain_id) as machine:
            _say(machine, "NMI received")

    def cpu_seconds(self, domain_id: str) -> float | None:
        with self._machine(domain_id) as machine:
            state = PowerState(machine.state)
            if state is PowerState.OFF:
                return None
            since = self._clock() if machine.state_since is None else machine.state_since
            return machine.cpu_seconds + CPU_USE[state] * max(self._clock() - since, 0.0)

    def console(self, domain_id: str, *, limit: int = 65536) -> bytes:
        with self._machine(domain_id) as machine:
            text = "".join(f"{line}\n" for line in machine.console).encode("utf-8")
        return text[-limit:] if limit > 0 else b""

    def lock(self, domain_id: str) -> contextlib.AbstractContextManager[None]:
        return self._shelf.lock(domain_id)

    def attach_disk(self, domain_id: str, path: Path) -> None:
        disk = str(check_disk(path))
        with self._machine(domain_id) as machine:
            if disk not in machine.disks:
                machine.disks.append(disk)

    def detach_disk(self, domain_id: str, path: Path) -> None:
        disk = str(Path(path).expanduser().absolute())
        with self._machine(domain_id) as machine:
            if disk not in machine.disks:
                raise MachineError(f"{disk} is not attached to {domain_id}")
            machine.disks.remove(disk)

    def disks(self, domain_id: str) -> list[Path]:
        with self._machine(domain_id) as machine:
            return [Path(d) for d in machine.disks]

    def set_network_boot(self, domain_id: str, source: NetworkBoot) -> None:
        tftp, bootfile, http = check_network_boot(source.tftp, source.bootfile, source.http)
        with self._machine(domain_id) as machine:
            machine.tftp = None if tftp is None else str(tftp)
            machine.bootfile = bootfile
            machine.http = None if http is None else str(http)

    def network_boot(self, domain_id: str) -> NetworkBoot:
        with self._machine(domain_id) as machine:
            return NetworkBoot(_path_or_none(machine.tftp), machine.bootfile,
                               _path_or_none(machine.http))

    # -- firmware slots ----------------------------------------------------------------

    def stage_firmware(self, domain_id: str, slot: Slot, image: bytes) -> str:
        with self.lock(domain_id):
            self._known(domain_id)
            return self._shelf.put_image(domain_id, Slot(slot), image)

    def firmware_digest(self, domain_id: str, slot: Slot) -> str | None:
        with self.lock(domain_id):
            self._known(domain_id)
            return self._shelf.image_digest(domain_id, Slot(slot))

    def _known(self, domain_id: str) -> None:
        if self._shelf.load(domain_id) is None:
            raise MachineError(f"no simulated machine {domain_id}")

    def advance_due(self) -> None:
        """Play the due steps of every machine (what a ``Ticker`` does on each tick)."""
        for domain_id in self._shelf.due(self._clock()):
            self.status(domain_id)

    # -- the state machine -----------------------------------------------------------

    def _boot_steps(self, start: float, cause: ResetCause | str) -> list[Step]:
        return [Step(start, "boot", str(cause)),
                Step(start + self.boot_seconds, "running", str(cause))]

    @contextlib.contextmanager
    def _machine(self, domain_id: str) -> Iterator[SimState]:
        """The machine's state with every step due played, saved when the block ends."""
        with self.lock(domain_id):
            machine = self._shelf.load(domain_id)
            if machine is None:  # a machine never created is off, and stays unknown
                yield SimState()
                return
            loaded = machine.to_json()
            self._advance(domain_id, machine)
            steady = PowerState(machine.state)
            yield machine
            if machine.state != steady.value:
                _account(machine, steady, self._clock())
            if machine.to_json() != loaded:
                self._shelf.save(domain_id, machine)

    def _advance(self, domain_id: str, machine: SimState) -> None:
        now = self._clock()
        while machine.steps and machine.steps[0].at <= now:
            step = machine.steps.pop(0)
            _account(machine, PowerState(machine.state), step.at)
            cause = ResetCause(step.cause)
            if step.action == "boot":
                plan = self._hooks.before_boot(domain_id, cause)
                machine.state = PowerState.POWERING_ON.value
                machine.trial = None
                _say(machine, f"vbios simulated firmware: power on ({cause.value})")
                if plan is not None:
                    _say_plan(machine, plan)
                    if plan.slot is not None and plan.slot.trial:
                        machine.trial = Slot(plan.slot.slot).value
                        machine.trial_expects = plan.slot.expected_sha256
            elif step.action == "running":
                if machine.trial is not None and not self._tried(domain_id, machine):
                    machine.failed_trials += 1
                    if machine.failed_trials < MAX_FAILED_TRIALS:
                        machine.steps[:0] = self._boot_steps(step.at, cause)  # at once
                        continue
                    _off(machine, f"{machine.failed_trials} trial boots failed in a row:"
                                  " power off")
                    machine.failed_trials = 0
                    self._hooks.on_event(domain_id, MachineEvent(
                        PowerState.OFF, ResetCause.CRASH, _utc(step.at)))
                    continue
                machine.failed_trials = 0
                machine.state = PowerState.ON.value
                _say(machine, "BdsDxe: no OS: waiting in the boot manager")
            else:
                self._cut_trial(domain_id, machine, "the machine was turned off")
                machine.state = PowerState.OFF.value
                _say(machine, "graceful shutdown timed out: power off")
                event = MachineEvent(PowerState.OFF, cause, _utc(step.at))
                self._hooks.on_event(domain_id, event)


    def _tried(self, domain_id: str, machine: SimState) -> bool:
        """End the trial of ``machine.trial`` (the boot has run its course): whether the
        slot's image reached a boot attempt. ``after_trial`` hears it either way."""
        assert machine.trial is not None
        slot, machine.trial = Slot(machine.trial), None
        image = self._shelf.image(domain_id, slot)
        why = None if image is None else is_firmware_volume(image)
        try:
            check_staged(SlotBoot(slot, "", True, machine.trial_expects),
                         None if image is None else hashlib.sha256(image).hexdigest())
        except MachineError as exc:
            why = exc.message
        if why is None:
            _say(machine, f"vbios simulated firmware: slot {slot.value} reached a boot attempt")
        else:
            _say(machine, f"vbios simulated firmware: slot {slot.value} did not boot: {why}")
        self._report(domain_id, TrialOutcome(slot, why is None, why or ""))
        return why is None

    def _cut_trial(self, domain_id: str, machine: SimState, why: str) -> None:
        """A trial under way ends without its boot attempt: ``why``."""
        if machine.trial is not None:
            slot, machine.trial = Slot(machine.trial), None
            self._report(domain_id, TrialOutcome(
                slot, False, f"{why} before the firmware reached a boot attempt"))

    def _report(self, domain_id: str, outcome: TrialOutcome) -> None:
        try:
            self._hooks.after_trial(domain_id, outcome)
        except Exception as exc:  # the hooks are not ours; the machine goes on
            log.error("after_trial(%s, %s) failed: %s: %s", domain_id, outcome.slot.value,
                      type(exc).__name__, exc)


def _say_plan(machine: SimState, plan: BootPlan) -> None:
    """What a firmware would do with ``plan``, on the simulated console."""
    image = plan.firmware
    entries = {entry.number: entry for entry in image.entries if entry.active}
    first = () if image.boot_next is None else (image.boot_next,)
    for number in (*first, *image.order):
        if number in entries:
            _say(machine, f"simulated boot attempt Boot{number:04X}"
                          f" \"{entries[number].description}\"")
    _say(machine, f"simulated machine: {plan.machine.cpus} vCPUs, Secure Boot"
                  f" {'on' if image.secure_boot_enable else 'off'}")
    if plan.slot is not None:
        _say(machine, f"simulated firmware slot {Slot(plan.slot.slot).value}, BIOS version"
                      f" {plan.slot.bios_version!r}{' (trial boot)' if plan.slot.trial else ''}")


def _account(machine: SimState, state: PowerState, until: float) -> None:
    """Count the CPU seconds of ``state`` from ``machine.state_since`` to ``until``."""
    if machine.state_since is not None:
        machine.cpu_seconds += CPU_USE[state] * max(until - machine.state_since, 0.0)
    machine.state_since = until


def _path_or_none(value: str | None) -> Path | None:
    return None if value is None else Path(value)


def _off(machine: SimState, why: str) -> None:
    machine.state = PowerState.OFF.value
    machine.steps = []
    _say(machine, why)


def _say(machine: SimState, line: str) -> None:
    machine.console.append(line)
    del machine.console[:-CONSOLE_LINES]


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


class Ticker(Periodic):
    """Plays every simulated machine's due steps every ``interval`` seconds, for as long
    as the process serves (``stop`` ends it)."""

    def __init__(self, platform: SimulatedPlatform, interval: float = 0.1) -> None:
        super().__init__("vbios-simulated-ticker", interval, platform.advance_due)


def in_memory_machines(hooks: MachineHooks = NO_HOOKS,
                       clock: Clock = time.time) -> dict[MachineKind, Platform]:
    """Simulated machines in memory, by kind: the fake for tests of the use cases."""
    return {MachineKind.SIMULATED: SimulatedPlatform(StateShelf(), hooks, clock=clock)}
