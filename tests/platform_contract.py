"""The Platform port's contract, run against every machine kind.

Subclass ``PlatformContract`` in a ``Test...`` class and provide two fixtures:
``machines``, a ``Machines`` (the adapter under test, the hooks it calls back,
and how long its boots and graceful timeouts take), and ``domain_id``, a
domain created on it (``machines.platform.create``) and removed afterwards.
Waits poll the live state with generous deadlines: a real QEMU guest takes
seconds to boot under TCG.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from bios_ws.domain.power import PowerState, ResetCause
from bios_ws.errors import MachineError
from bios_ws.platform.port import MachineEvent, MachineHooks, Platform
from bios_ws.platform.simulated import SimulatedPlatform, StateShelf, Ticker
from tests.waiting import wait_for


@dataclass
class RecordingHooks:
    """Hooks that remember every call."""

    boots: list[tuple[str, ResetCause]] = field(default_factory=list)
    events: list[tuple[str, MachineEvent]] = field(default_factory=list)

    def hooks(self) -> MachineHooks:
        return MachineHooks(before_boot=lambda d, c: self.boots.append((d, c)),
                            on_event=lambda d, e: self.events.append((d, e)))


@dataclass
class Machines:
    platform: Platform
    recorded: RecordingHooks
    #: Seconds a boot may take until On, and a graceful shutdown until it escalates.
    boot_limit: float
    graceful_timeout: float


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

    def test_the_lock_is_reentrant_in_one_thread(
        self, machines: Machines, domain_id: str
    ) -> None:
        with machines.platform.lock(domain_id), machines.platform.lock(domain_id):
            assert machines.platform.status(domain_id) is PowerState.OFF


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

