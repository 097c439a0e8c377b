"""The Platform port's contract, run against every machine kind.

Subclass ``PlatformContract`` in a ``Test...`` class and provide two fixtures:
``machines``, a ``Machines`` (the adapter under test, the hooks it calls back,
and how long its boots and graceful timeouts take), and ``domain_id``, a
domain created on it (``machines.platform.create``) and removed afterwards.
Waits poll the live state with generous deadlines: a real QEMU guest takes
seconds to boot under TCG.

The hooks record every call, and hand out boot plans a test gives them
(``give_plans``): the n-th boot gets the n-th plan, the last one again once they
run out. Firmware slot trials are the slowest tests on real guests (a good image
boots once, a bad one waits out the trial timeout and boots again): there is one
of each, the rest stages images without booting them.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

from bios_ws.config import PlatformOptions
from bios_ws.domain.firmware import (
    BootDevice,
    BootEntry,
    BootPlan,
    FirmwareImage,
    KeyDatabases,
    MachineOptions,
    SlotBoot,
)
from bios_ws.domain.firmware_update import Slot
from bios_ws.domain.power import PowerState, ResetCause
from bios_ws.errors import MachineError
from bios_ws.platform.port import MachineEvent, MachineHooks, Platform, TrialOutcome
from bios_ws.platform.simulated import SimulatedPlatform, StateShelf, Ticker
from tests.waiting import wait_for


class Recorder(Protocol):
    """What the hooks of a ``Machines`` heard, and the plans they hand out."""

    @property
    def boots(self) -> list[tuple[str, ResetCause]]: ...

    @property
    def events(self) -> list[tuple[str, MachineEvent]]: ...

    @property
    def trials(self) -> list[tuple[str, TrialOutcome]]: ...

    def give_plans(self, domain_id: str, *plans: BootPlan | None) -> None: ...


@dataclass
class RecordingHooks:
    """Hooks that remember every call, and answer before_boot with the plans given."""

    boots: list[tuple[str, ResetCause]] = field(default_factory=list)
    events: list[tuple[str, MachineEvent]] = field(default_factory=list)
    trials: list[tuple[str, TrialOutcome]] = field(default_factory=list)
    plans: list[BootPlan | None] = field(default_factory=list)

    def hooks(self) -> MachineHooks:
        return MachineHooks(before_boot=self._before_boot,
                            on_event=lambda d, e: self.events.append((d, e)),
                            after_trial=lambda d, t: self.trials.append((d, t)))

    def _before_boot(self, domain_id: str, cause: ResetCause) -> BootPlan | None:
        count = len(self.boots)
        self.boots.append((domain_id, cause))
        return self.plans[min(count, len(self.plans) - 1)] if self.plans else None

    def give_plans(self, domain_id: str, *plans: BootPlan | None) -> None:
        self.plans = list(plans)


@dataclass
class Machines:
    platform: Platform
    recorded: Recorder
    #: Seconds a boot may take until On, and a graceful shutdown until it escalates.
    boot_limit: float
    graceful_timeout: float


def slot_plan(slot: Slot, *, trial: bool, version: str = "vbios-2") -> BootPlan:
    """A plan booting ``slot`` that reaches a boot attempt at once (an empty CD-ROM)."""
    image = FirmwareImage((BootEntry(1, "option1", "contract: the CD-ROM", BootDevice.CDROM),),
                          (1,), None, False, KeyDatabases(), b"")
    return BootPlan(image, MachineOptions(nic=False), SlotBoot(slot, version, trial))


def good_image() -> bytes:
    """An image that boots: the installation's OVMF code (a UEFI firmware volume; `make
    test` installs the ovmf package)."""
    return Path(PlatformOptions().ovmf_code).read_bytes()


def bad_image() -> bytes:
    """Random bytes of the good image's size: no firmware volume, nothing that boots."""
    return random.Random(13).randbytes(len(good_image()))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wait_state(machines: Machines, domain_id: str, state: PowerState, limit: float) -> None:
    wait_for(lambda: machines.platform.status(domain_id) is state, state.value, limit, 0.05)


def booted(machines: Machines, domain_id: str) -> None:
    machines.platform.power_on(domain_id, ResetCause.MANAGEMENT_COMMAND)
    wait_state(machines, domain_id, PowerState.ON, machines.boot_limit)


class PlatformContract:
    """Behaviour every Platform adapter must show."""

    def test_a_new_machine_is_off_and_prints_nothing_yet(
        self, machines: Machines, domain_id: str
    ) -> None:
        assert machines.platform.status(domain_id) is PowerState.OFF
        assert machines.platform.has_firmware(domain_id) is True
        assert machines.recorded.boots == []

    def test_power_on_boots_once_then_runs(self, machines: Machines, domain_id: str) -> None:
        machines.platform.power_on(domain_id, ResetCause.POWER_RESTORE_POLICY)
        assert machines.platform.status(domain_id) in (PowerState.POWERING_ON, PowerState.ON)
        wait_state(machines, domain_id, PowerState.ON, machines.boot_limit)
        assert machines.recorded.boots == [(domain_id, ResetCause.POWER_RESTORE_POLICY)]

    def test_delayed_power_on_waits_before_booting(
        self, machines: Machines, domain_id: str
    ) -> None:
        machines.platform.power_on(domain_id, ResetCause.POWER_RESTORE_POLICY, delay=1.0)
        assert machines.platform.status(domain_id) is PowerState.POWERING_ON
        assert machines.recorded.boots == []
        wait_state(machines, domain_id, PowerState.ON, machines.boot_limit + 1.0)
        assert len(machines.recorded.boots) == 1

    def test_hard_off_is_immediate(self, machines: Machines, domain_id: str) -> None:
        booted(machines, domain_id)
        machines.platform.power_off(domain_id, ResetCause.MANAGEMENT_COMMAND, graceful=False)
        assert machines.platform.status(domain_id) is PowerState.OFF
        assert machines.recorded.events == []  # asked for: not an event of its own

    def test_graceful_off_escalates_when_the_firmware_ignores_the_button(
        self, machines: Machines, domain_id: str
    ) -> None:
        booted(machines, domain_id)
        machines.platform.power_off(domain_id, ResetCause.POWER_BUTTON_PRESS, graceful=True)
        assert machines.platform.status(domain_id) is PowerState.POWERING_OFF
        wait_state(machines, domain_id, PowerState.OFF, machines.graceful_timeout + 15)
        [(domain, event)] = machines.recorded.events
        assert domain == domain_id
        assert (event.state, event.cause) == (PowerState.OFF, ResetCause.POWER_BUTTON_PRESS)

    def test_hard_restart_boots_again(self, machines: Machines, domain_id: str) -> None:
        booted(machines, domain_id)
        machines.platform.restart(domain_id, ResetCause.MANAGEMENT_COMMAND, graceful=False)
        wait_state(machines, domain_id, PowerState.ON, machines.boot_limit)
        assert [cause for _, cause in machines.recorded.boots] == [
            ResetCause.MANAGEMENT_COMMAND, ResetCause.MANAGEMENT_COMMAND]

    def test_graceful_restart_escalates_then_boots(
        self, machines: Machines, domain_id: str
    ) -> None:
        booted(machines, domain_id)
        machines.platform.restart(domain_id, ResetCause.MANAGEMENT_COMMAND, graceful=True)
        assert machines.platform.status(domain_id) is PowerState.POWERING_OFF
        wait_for(lambda: len(machines.recorded.boots) == 2, "booted again",
                 machines.graceful_timeout + machines.boot_limit, 0.05)
        wait_state(machines, domain_id, PowerState.ON, machines.boot_limit)

    def test_pause_and_resume(self, machines: Machines, domain_id: str) -> None:
        booted(machines, domain_id)
        machines.platform.pause(domain_id)
        assert machines.platform.status(domain_id) is PowerState.PAUSED
        machines.platform.resume(domain_id)
        assert machines.platform.status(domain_id) is PowerState.ON

    def test_nmi_leaves_it_running(self, machines: Machines, domain_id: str) -> None:
        booted(machines, domain_id)
        machines.platform.nmi(domain_id)
        assert machines.platform.status(domain_id) in (PowerState.ON, PowerState.POWERING_ON)

    def test_the_console_shows_the_boot_and_is_bounded(
        self, machines: Machines, domain_id: str
    ) -> None:
        booted(machines, domain_id)
        wait_for(lambda: len(machines.platform.console(domain_id)) > 0,
                 "printing on the console", machines.boot_limit, 0.05)
        assert len(machines.platform.console(domain_id, limit=10)) <= 10

    def test_a_machine_without_firmware_powers_on_only_once_it_has_its_image(
        self, machines: Machines, domain_id: str
    ) -> None:
        machines.platform.remove(domain_id)
        machines.platform.create(domain_id, firmware=False)
        assert machines.platform.has_firmware(domain_id) is False
        with pytest.raises(MachineError, match="no firmware image yet"):
            machines.platform.power_on(domain_id, ResetCause.MANAGEMENT_COMMAND)
        assert machines.platform.status(domain_id) is PowerState.OFF
        assert machines.recorded.boots == []
        machines.platform.assign_firmware(domain_id)
        machines.platform.assign_firmware(domain_id)  # once assigned, nothing more
        assert machines.platform.has_firmware(domain_id) is True
        booted(machines, domain_id)
        assert machines.recorded.boots == [(domain_id, ResetCause.MANAGEMENT_COMMAND)]

    def test_remove_turns_a_running_machine_off(
        self, machines: Machines, domain_id: str
    ) -> None:
        booted(machines, domain_id)
        machines.platform.remove(domain_id)
        assert machines.platform.status(domain_id) is PowerState.OFF

    def test_cpu_seconds_are_none_while_off_and_grow_while_it_runs(
        self, machines: Machines, domain_id: str
    ) -> None:
        platform = machines.platform
        assert platform.cpu_seconds(domain_id) is None
        assert platform.cpu_seconds("no-such-machine") is None
        booted(machines, domain_id)
        first = platform.cpu_seconds(domain_id)
        assert first is not None and first > 0  # its firmware booted: that took CPU
        time.sleep(0.3)
        second = platform.cpu_seconds(domain_id)
        assert second is not None and second >= first
        platform.power_off(domain_id, ResetCause.MANAGEMENT_COMMAND, graceful=False)
        assert platform.cpu_seconds(domain_id) is None

    def test_the_lock_is_reentrant_in_one_thread(
        self, machines: Machines, domain_id: str
    ) -> None:
        with machines.platform.lock(domain_id), machines.platform.lock(domain_id):
            assert machines.platform.status(domain_id) is PowerState.OFF


    # -- firmware slots -----------------------------------------------------------------

    def test_staging_returns_the_digest_of_the_slot_which_held_nothing_before(
        self, machines: Machines, domain_id: str
    ) -> None:
        platform, image = machines.platform, good_image()
        assert platform.firmware_digest(domain_id, Slot.A) is None
        assert platform.firmware_digest(domain_id, Slot.B) is None
        assert platform.stage_firmware(domain_id, Slot.B, image) == sha256(image)
        assert platform.firmware_digest(domain_id, Slot.B) == sha256(image)
        assert platform.firmware_digest(domain_id, Slot.A) is None
        other = image[:-1] + b"\x01"
        assert platform.stage_firmware(domain_id, Slot.B, other) == sha256(other)
        assert platform.firmware_digest(domain_id, Slot.B) == sha256(other)
        with pytest.raises(MachineError):
            platform.stage_firmware(domain_id, Slot.A, b"")
        assert platform.firmware_digest(domain_id, Slot.A) is None
        with pytest.raises(MachineError):
            platform.stage_firmware("no-such-machine", Slot.A, image)
        assert machines.recorded.boots == []

    def test_staging_while_the_machine_runs_from_the_other_slot(
        self, machines: Machines, domain_id: str
    ) -> None:
        machines.recorded.give_plans(domain_id, slot_plan(Slot.A, trial=False))
        booted(machines, domain_id)
        image = bad_image()
        assert machines.platform.stage_firmware(domain_id, Slot.B, image) == sha256(image)
        assert machines.platform.status(domain_id) is PowerState.ON
        assert machines.platform.firmware_digest(domain_id, Slot.B) == sha256(image)
        machines.platform.power_off(domain_id, ResetCause.MANAGEMENT_COMMAND, graceful=False)
        assert machines.recorded.trials == []

    def test_a_trial_of_a_good_image_reports_that_it_booted(
        self, machines: Machines, domain_id: str
    ) -> None:
        image = good_image()
        machines.platform.stage_firmware(domain_id, Slot.B, image)
        machines.recorded.give_plans(domain_id, slot_plan(Slot.B, trial=True))
        machines.platform.power_on(domain_id, ResetCause.MANAGEMENT_COMMAND)
        wait_for(lambda: machines.recorded.trials != [], "a trial outcome",
                 machines.boot_limit, 0.05)
        assert machines.recorded.trials == [(domain_id, TrialOutcome(Slot.B, True))]
        assert machines.platform.status(domain_id) is PowerState.ON
        assert machines.recorded.boots == [(domain_id, ResetCause.MANAGEMENT_COMMAND)]
        assert machines.recorded.events == []
        machines.platform.power_off(domain_id, ResetCause.MANAGEMENT_COMMAND, graceful=False)

    def test_a_trial_of_a_bad_image_fails_and_the_machine_boots_the_next_plan(
        self, machines: Machines, domain_id: str
    ) -> None:
        machines.platform.stage_firmware(domain_id, Slot.B, bad_image())
        machines.recorded.give_plans(domain_id, slot_plan(Slot.B, trial=True),
                                     slot_plan(Slot.A, trial=False))
        machines.platform.power_on(domain_id, ResetCause.POWER_BUTTON_PRESS)
        wait_for(lambda: machines.recorded.trials != [], "a trial outcome",
                 machines.boot_limit, 0.05)
        [(domain, outcome)] = machines.recorded.trials
        assert (domain, outcome.slot, outcome.booted) == (domain_id, Slot.B, False)
        assert outcome.reason
        wait_for(lambda: len(machines.recorded.boots) == 2, "booted again",
                 machines.boot_limit, 0.05)
        wait_state(machines, domain_id, PowerState.ON, machines.boot_limit)
        assert machines.recorded.boots == [(domain_id, ResetCause.POWER_BUTTON_PRESS)] * 2
        assert len(machines.recorded.trials) == 1
        assert machines.recorded.events == []
        machines.platform.power_off(domain_id, ResetCause.MANAGEMENT_COMMAND, graceful=False)

    def test_remove_deletes_the_slots(self, machines: Machines, domain_id: str) -> None:
        image = good_image()
        for slot in Slot:
            machines.platform.stage_firmware(domain_id, slot, image)
        machines.platform.remove(domain_id)
        machines.platform.create(domain_id)
        assert [machines.platform.firmware_digest(domain_id, slot) for slot in Slot] == [
            None, None]


def simulated_machines(shelf: StateShelf, boot: float = 0.1,
                       graceful: float = 0.3) -> Iterator[Machines]:
    """Simulated machines on ``shelf``, their clock running, for a ``machines`` fixture."""
    recorded = RecordingHooks()
    platform = SimulatedPlatform(shelf, recorded.hooks(), boot_seconds=boot,
                                 graceful_timeout=graceful)
    ticker = Ticker(platform, interval=0.02).start()
    yield Machines(platform, recorded, boot_limit=5.0, graceful_timeout=graceful)
    ticker.stop()


def created_domain(machines: Machines) -> Iterator[str]:
    """A machine created on ``machines`` for the test, removed afterwards."""
    machines.platform.create("sim1")
    yield "sim1"
    machines.platform.remove("sim1")

