"""The simulated machine passes the platform contract (in memory)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bios_ws.domain.firmware_update import Slot
from bios_ws.domain.power import PowerState, ResetCause
from bios_ws.errors import MachineError
from bios_ws.platform.port import MAX_FAILED_TRIALS, MachineHooks, TrialOutcome
from bios_ws.platform.simulated import CPU_USE, SimulatedPlatform, StateShelf
from tests.platform_contract import (
    Machines,
    PlatformContract,
    RecordingHooks,
    created_domain,
    simulated_machines,
    slot_plan,
)


class TestInMemory(PlatformContract):
    @pytest.fixture
    def machines(self) -> Iterator[Machines]:
        yield from simulated_machines(StateShelf())

    @pytest.fixture
    def domain_id(self, machines: Machines) -> Iterator[str]:
        yield from created_domain(machines)


# -- firmware slots: what only the simulated machine shows (a manual clock) -----------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def recorded() -> RecordingHooks:
    return RecordingHooks()


@pytest.fixture
def sim(clock: Clock, recorded: RecordingHooks) -> SimulatedPlatform:
    platform = SimulatedPlatform(StateShelf(), recorded.hooks(), clock=clock, boot_seconds=2.0,
                                 graceful_timeout=5.0)
    platform.create("s1")
    return platform


def test_a_trial_of_a_slot_never_written_boots_the_installation_image(
    sim: SimulatedPlatform, clock: Clock, recorded: RecordingHooks
) -> None:
    recorded.give_plans("s1", slot_plan(Slot.A, trial=True, version="vbios-1"))
    sim.power_on("s1", ResetCause.MANAGEMENT_COMMAND)
    assert sim.status("s1") is PowerState.POWERING_ON
    assert recorded.trials == []
    clock.now += 2.0
    assert sim.status("s1") is PowerState.ON
    assert recorded.trials == [("s1", TrialOutcome(Slot.A, True))]
    console = sim.console("s1").decode()
    assert "slot A, BIOS version 'vbios-1' (trial boot)" in console
    assert "slot A reached a boot attempt" in console


def test_the_failed_trial_says_why_on_the_console_and_boots_again_at_once(
    sim: SimulatedPlatform, clock: Clock, recorded: RecordingHooks
) -> None:
    sim.stage_firmware("s1", Slot.B, b"\0" * 4096)
    recorded.give_plans("s1", slot_plan(Slot.B, trial=True), slot_plan(Slot.A, trial=False))
    sim.power_on("s1", ResetCause.MANAGEMENT_COMMAND)
    clock.now += 2.0
    assert sim.status("s1") is PowerState.POWERING_ON  # the second boot began at 2.0 s
    [(_, outcome)] = recorded.trials
    assert not outcome.booted and "no firmware volume signature" in outcome.reason
    assert "slot B did not boot: no firmware volume signature" in sim.console("s1").decode()
    assert len(recorded.boots) == 2
    clock.now += 2.0
    assert sim.status("s1") is PowerState.ON
    assert len(recorded.trials) == 1


def test_trials_failing_in_a_row_turn_the_machine_off(
    sim: SimulatedPlatform, clock: Clock, recorded: RecordingHooks
) -> None:
    sim.stage_firmware("s1", Slot.B, b"not firmware")
    recorded.give_plans("s1", slot_plan(Slot.B, trial=True))  # again and again
    sim.power_on("s1", ResetCause.MANAGEMENT_COMMAND)
    clock.now += 60.0
    assert sim.status("s1") is PowerState.OFF
    assert [t.booted for _, t in recorded.trials] == [False] * MAX_FAILED_TRIALS
    assert len(recorded.boots) == MAX_FAILED_TRIALS
    [(_, event)] = recorded.events
    assert (event.state, event.cause) == (PowerState.OFF, ResetCause.CRASH)
    assert f"{MAX_FAILED_TRIALS} trial boots failed in a row" in sim.console("s1").decode()


@pytest.mark.parametrize("how", ["off", "restart", "graceful off"])
def test_a_trial_cut_short_is_reported_as_not_booted(
    sim: SimulatedPlatform, clock: Clock, recorded: RecordingHooks, how: str
) -> None:
    recorded.give_plans("s1", slot_plan(Slot.B, trial=True), slot_plan(Slot.A, trial=False))
    sim.power_on("s1", ResetCause.MANAGEMENT_COMMAND)
    clock.now += 1.0
    if how == "restart":
        sim.restart("s1", ResetCause.MANAGEMENT_COMMAND, graceful=False)
    else:
        sim.power_off("s1", ResetCause.MANAGEMENT_COMMAND, graceful=how != "off")
        clock.now += 10.0
        assert sim.status("s1") is PowerState.OFF
    [(_, outcome)] = recorded.trials
    assert (outcome.slot, outcome.booted) == (Slot.B, False)
    assert "before the firmware reached a boot attempt" in outcome.reason
    clock.now += 10.0
    assert sim.status("s1") is (PowerState.ON if how == "restart" else PowerState.OFF)
    assert len(recorded.trials) == 1


def test_a_failing_after_trial_is_logged_and_the_machine_goes_on(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    def fail(domain_id: str, outcome: TrialOutcome) -> None:
        raise RuntimeError("the service is down")

    plan = slot_plan(Slot.A, trial=True)
    sim = SimulatedPlatform(StateShelf(), MachineHooks(
        before_boot=lambda d, c: plan, on_event=lambda d, e: None, after_trial=fail),
        clock=clock, boot_seconds=1.0)
    sim.create("s1")
    sim.power_on("s1", ResetCause.MANAGEMENT_COMMAND)
    clock.now += 1.0
    assert sim.status("s1") is PowerState.ON
    assert "after_trial(s1, A) failed: RuntimeError: the service is down" in caplog.text


def test_slots_of_an_in_memory_machine_go_with_it(sim: SimulatedPlatform) -> None:
    sim.stage_firmware("s1", Slot.A, b"image")
    sim.remove("s1")
    with pytest.raises(MachineError, match="no simulated machine s1"):
        sim.firmware_digest("s1", Slot.A)
    sim.create("s1")
    assert sim.firmware_digest("s1", Slot.A) is None


# -- CPU use: what a TCG guest's QEMU would have used in each state ---------------------


def test_cpu_seconds_follow_the_state_one_core_while_booting(
    sim: SimulatedPlatform, clock: Clock
) -> None:
    assert sim.cpu_seconds("s1") is None  # off: no process
    assert sim.cpu_seconds("never-created") is None
    sim.power_on("s1", ResetCause.MANAGEMENT_COMMAND)
    assert sim.cpu_seconds("s1") == 0.0
    clock.now += 1.0
    assert sim.cpu_seconds("s1") == pytest.approx(1.0)  # booting: one core
    clock.now += 101.0  # the boot ended after 2 s; 100 s waiting in the boot manager
    assert sim.cpu_seconds("s1") == pytest.approx(2.0 + 100 * CPU_USE[PowerState.ON])
    sim.pause("s1")
    clock.now += 50.0
    paused = sim.cpu_seconds("s1")
    assert paused == pytest.approx(5.0)  # paused: nothing
    sim.resume("s1")
    sim.power_off("s1", ResetCause.MANAGEMENT_COMMAND, graceful=True)
    clock.now += 4.0  # the graceful shutdown waits (5 s) with the firmware still running
    assert sim.cpu_seconds("s1") == pytest.approx(paused + 4 * CPU_USE[PowerState.POWERING_OFF])
    clock.now += 1.0
    assert sim.cpu_seconds("s1") is None


def test_cpu_seconds_never_go_back_across_boots(sim: SimulatedPlatform, clock: Clock) -> None:
    seen = []
    for _ in range(3):
        sim.power_on("s1", ResetCause.MANAGEMENT_COMMAND)
        clock.now += 10.0
        seen.append(sim.cpu_seconds("s1"))
        sim.power_off("s1", ResetCause.MANAGEMENT_COMMAND, graceful=False)
    assert seen == sorted(seen) and seen[0] == pytest.approx(2.0 + 8 * 0.03)
