"""The power use case over simulated machines in memory, on a clock the test moves."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from bios_ws.domain.audit import AuditEntry
from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.firmware import KeyDatabases
from bios_ws.domain.power import MachineKind, PowerState, ResetCause, ResetType
from bios_ws.domain.principal import Principal
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.domain.state import ApplyTime
from bios_ws.errors import (
    AccessDenied,
    DomainNotFound,
    InvalidPowerTransition,
    ServiceRestricted,
    VersionConflict,
)
from bios_ws.platform.simulated import SimulatedPlatform, StateShelf
from bios_ws.service.bios import BiosService
from bios_ws.service.boot import MachineObserver
from bios_ws.service.domains import DomainService
from bios_ws.service.power import PowerService
from bios_ws.soap.testing import ManualClock

BOOT = 2.0
GRACEFUL = 30.0
GUEST = Principal.guest("vm1")
ADMIN = Principal.admin("root")


@dataclass
class World:
    store: MemoryStore
    bios: BiosService
    domains: DomainService
    power: PowerService
    platform: SimulatedPlatform
    clock: ManualClock
    restricted: bool = False

    @property
    def moment(self) -> datetime:
        return self.clock.now()

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def gate(self) -> None:
        if self.restricted:
            raise ServiceRestricted("the host is untrusted")

    def audit(self, operation: str) -> list[AuditEntry]:
        return [e for e in self.store.audit if e.operation == operation]


@pytest.fixture
def world(shipped_registry: AttributeRegistry) -> World:
    store = MemoryStore()
    clock = ManualClock(datetime(2026, 5, 1, tzinfo=UTC))
    holder: list[World] = []

    def gate() -> None:
        holder[0].gate()

    bios = BiosService(store.unit_of_work, shipped_registry, clock.now, gate=gate)
    observer = MachineObserver(store.unit_of_work, bios, clock.now, KeyDatabases)
    platform = SimulatedPlatform(StateShelf(), observer.hooks(), clock=clock.seconds,
                                 boot_seconds=BOOT, graceful_timeout=GRACEFUL)
    platforms = {MachineKind.SIMULATED: platform}
    domains = DomainService(store.unit_of_work, shipped_registry, platforms, clock.now)
    power = PowerService(store.unit_of_work, clock.now, platforms, bios, gate)
    holder.append(World(store, bios, domains, power, platform, clock))
    domains.create(ADMIN, "vm1")
    domains.create(ADMIN, "vm2")
    return holder[0]


def on(world: World) -> None:
    world.power.reset(GUEST, ResetType.ON)
    world.advance(BOOT)
    assert world.power.get_power(GUEST).state is PowerState.ON


def test_a_new_domain_is_off_with_no_reset_yet(world: World) -> None:
    view = world.power.get_power(GUEST)
    assert (view.state, view.last_reset_cause, view.last_reset_time) == (PowerState.OFF, None,
                                                                         None)
    assert view.kind is MachineKind.SIMULATED and view.pending_changes is False


def test_power_on_goes_through_powering_on(world: World) -> None:
    outcome = world.power.reset(GUEST, ResetType.ON)
    assert outcome.state is PowerState.POWERING_ON
    assert "no changes were pending" in outcome.message
    world.advance(BOOT)
    view = world.power.get_power(GUEST)
    assert view.state is PowerState.ON
    assert view.last_reset_cause is ResetCause.MANAGEMENT_COMMAND
    assert view.last_reset_time == world.moment - timedelta(seconds=BOOT)


def test_a_request_that_makes_no_sense_is_refused_naming_the_state_and_audited(
    world: World
) -> None:
    on(world)
    for request in (ResetType.ON, ResetType.RESUME):
        with pytest.raises(InvalidPowerTransition) as refused:
            world.power.reset(GUEST, request)
        assert refused.value.attribute == "On"
    assert [e.outcome for e in world.audit("Reset")] == [
        "ok", "refused:InvalidPowerTransition", "refused:InvalidPowerTransition"]
    assert world.power.get_power(GUEST).state is PowerState.ON


def test_graceful_shutdown_escalates_to_off_after_the_timeout(world: World) -> None:
    on(world)
    assert world.power.reset(GUEST, ResetType.GRACEFUL_SHUTDOWN).state is PowerState.POWERING_OFF
    world.advance(GRACEFUL - 1)
    assert world.power.get_power(GUEST).state is PowerState.POWERING_OFF
    world.advance(1)
    view = world.power.get_power(GUEST)
    assert (view.state, view.last_reset_cause) == (PowerState.OFF, ResetCause.MANAGEMENT_COMMAND)
    assert [e.outcome for e in world.audit("PowerEvent")] == ["ok"]


def test_push_power_button_turns_on_and_off_with_its_cause(world: World) -> None:
    world.power.reset(GUEST, ResetType.PUSH_POWER_BUTTON)
    world.advance(BOOT)
    assert world.power.get_power(GUEST).last_reset_cause is ResetCause.POWER_BUTTON_PRESS
    world.power.reset(GUEST, ResetType.PUSH_POWER_BUTTON)
    world.advance(GRACEFUL)
    view = world.power.get_power(GUEST)
    assert (view.state, view.last_reset_cause) == (PowerState.OFF, ResetCause.POWER_BUTTON_PRESS)


def test_pause_resume_and_nmi_keep_the_last_reset(world: World) -> None:
    on(world)
    before = world.power.get_power(GUEST).last_reset_time
    assert world.power.reset(GUEST, ResetType.PAUSE).state is PowerState.PAUSED
    assert world.power.reset(GUEST, ResetType.RESUME).state is PowerState.ON
    assert world.power.reset(GUEST, ResetType.NMI).state is PowerState.ON
    assert world.power.get_power(GUEST).last_reset_time == before


def test_force_restart_and_power_cycle_boot_again(world: World) -> None:
    on(world)
    for request in (ResetType.FORCE_RESTART, ResetType.POWER_CYCLE):
        world.advance(5)
        assert world.power.reset(GUEST, request).state is PowerState.POWERING_ON
        world.advance(BOOT)
        view = world.power.get_power(GUEST)
        assert view.state is PowerState.ON
        assert view.last_reset_time == world.moment - timedelta(seconds=BOOT)


def test_pending_values_and_boot_next_apply_at_power_on_through_apply_pending(
    world: World
) -> None:
    version = world.bios.set_attributes(GUEST, {"BootMode": "Bios"}, ApplyTime.ON_RESET)
    world.bios.set_boot_next(GUEST, "Shell.Uefi")
    assert world.power.get_power(GUEST).pending_changes is True
    outcome = world.power.reset(GUEST, ResetType.ON)
    assert "pending changes were applied" in outcome.message
    assert outcome.pending_changes is False
    assert world.bios.get_attributes(GUEST).values["BootMode"] == "Bios"
    assert world.bios.get_boot(GUEST).boot_next is None
    assert world.bios.get_attributes(GUEST).version == version + 2  # set BootNext, apply
    [applied] = world.audit("ApplyPendingAttributes")
    assert (applied.principal, applied.outcome) == ("admin:platform", "ok")


def test_pending_values_apply_when_a_graceful_restart_boots(world: World) -> None:
    on(world)
    world.bios.set_attributes(GUEST, {"BootMode": "Bios"}, ApplyTime.ON_RESET)
    outcome = world.power.reset(GUEST, ResetType.GRACEFUL_RESTART)
    assert outcome.pending_changes and "will be applied when it boots" in outcome.message
    world.advance(GRACEFUL + BOOT)
    assert world.power.get_power(GUEST).state is PowerState.ON
    assert world.bios.get_attributes(GUEST).values["BootMode"] == "Bios"


def test_restricted_mode_keeps_pending_values_but_power_works(world: World) -> None:
    world.bios.set_attributes(GUEST, {"BootMode": "Bios"}, ApplyTime.ON_RESET)
    world.restricted = True
    outcome = world.power.reset(GUEST, ResetType.ON)
    assert outcome.state is PowerState.POWERING_ON and outcome.pending_changes
    assert "restricted mode" in outcome.message
    world.advance(BOOT)
    assert world.power.get_power(GUEST).state is PowerState.ON
    assert world.bios.get_pending(GUEST).values == {"BootMode": "Bios"}
    assert [e.outcome for e in world.audit("ApplyPendingAttributes")] == [
        "refused:ServiceRestricted"]


def test_a_power_transition_never_moves_the_settings_version(world: World) -> None:
    version = world.bios.get_attributes(GUEST).version
    on(world)
    world.power.reset(GUEST, ResetType.FORCE_RESTART)
    world.power.reset(GUEST, ResetType.FORCE_OFF)
    assert world.bios.get_attributes(GUEST).version == version
    world.bios.set_attributes(GUEST, {"AssetTag": "rack-1"}, expected_version=version)


def test_concurrent_resets_and_settings_writers_are_all_answered(world: World) -> None:
    on(world)
    answers: list[str] = []
    lock = threading.Lock()

    def restart() -> None:
        for _ in range(10):
            try:
                world.power.reset(GUEST, ResetType.FORCE_RESTART)
                result = "ok"
            except InvalidPowerTransition:
                result = "refused"
            with lock:
                answers.append(result)

    def write(n: int) -> None:
        for i in range(10):
            while True:
                version = world.bios.get_attributes(GUEST).version
                try:
                    world.bios.set_attributes(GUEST, {"AssetTag": f"t{n}-{i}"},
                                              expected_version=version)
                    break
                except VersionConflict:  # only the other writer: never a power request
                    continue

    threads = [threading.Thread(target=restart) for _ in range(2)]
    threads += [threading.Thread(target=write, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers.count("ok") == 20  # ForceRestart fits On and PoweringOn alike
    assert world.bios.get_attributes(GUEST).version == 1 + 20


def test_admin_names_the_domain_and_guests_reach_only_their_own(world: World) -> None:
    world.power.reset_domain(ADMIN, "vm2", ResetType.ON)
    assert world.power.get_domain_power(ADMIN, "vm2").state is PowerState.POWERING_ON
    assert world.power.get_power(GUEST).state is PowerState.OFF
    with pytest.raises(AccessDenied):
        world.power.reset_domain(GUEST, "vm2", ResetType.FORCE_OFF)
    with pytest.raises(AccessDenied):
        world.power.get_domain_power(GUEST, "vm2")
    with pytest.raises(AccessDenied):
        world.power.reset(ADMIN, ResetType.ON)
    with pytest.raises(DomainNotFound):
        world.power.reset_domain(ADMIN, "nobody", ResetType.ON)
    assert [e.outcome for e in world.audit("ResetDomain")] == [
        "ok", "refused:AccessDenied", "refused:DomainNotFound"]


def test_a_machine_that_goes_off_without_a_word_is_recorded_as_a_crash(world: World) -> None:
    on(world)
    world.platform.power_off("vm1", ResetCause.MANAGEMENT_COMMAND, graceful=False)
    view = world.power.get_power(GUEST)
    assert (view.state, view.last_reset_cause) == (PowerState.OFF, ResetCause.CRASH)


def test_deleting_a_running_domain_turns_its_machine_off_first(world: World) -> None:
    on(world)
    world.domains.delete(ADMIN, "vm1")
    with pytest.raises(DomainNotFound):
        world.power.get_domain_power(ADMIN, "vm1")
    assert world.store.machines.keys() == {"vm2"}


@pytest.mark.parametrize(("policy", "was_on", "powers_on"), [
    ("On", False, True), ("Off", True, False), ("Last", True, True), ("Last", False, False)])
def test_power_restore_at_service_start(
    world: World, policy: str, was_on: bool, powers_on: bool
) -> None:
    world.bios.set_attributes(GUEST, {"AcPwrRcvry": policy})
    if was_on:
        on(world)
    said = world.power.restore_power()
    view = world.power.get_power(GUEST)
    if powers_on:
        assert view.state is PowerState.POWERING_ON
        assert view.last_reset_cause is ResetCause.POWER_RESTORE_POLICY
        assert said[0].startswith("vm1: powered on (AcPwrRcvry")
    else:
        assert view.state is PowerState.OFF
    assert world.power.get_domain_power(ADMIN, "vm2").state is PowerState.OFF  # Last, was off


def test_power_restore_waits_the_delay(world: World) -> None:
    world.bios.set_attributes(GUEST, {"AcPwrRcvry": "On", "AcPwrRcvryDelay": 60})
    world.power.restore_power()
    world.advance(59 + BOOT)
    assert world.power.get_power(GUEST).state is PowerState.POWERING_ON
    world.advance(1)
    assert world.power.get_power(GUEST).state is PowerState.ON


def test_power_restore_leaves_a_machine_without_firmware_off(world: World) -> None:
    world.domains.create(ADMIN, "s1", firmware=False)
    world.bios.set_attributes(Principal.guest("s1"), {"AcPwrRcvry": "On"})
    said = world.power.restore_power()
    assert "s1: stays off: no firmware image yet (provisioning state S1)" in said
    assert world.power.get_domain_power(ADMIN, "s1").state is PowerState.OFF


# -- the thermal policy's shutdown ----------------------------------------------------------


def test_a_thermal_shutdown_is_graceful_and_leaves_thermal_event_as_the_cause(
    world: World
) -> None:
    on(world)
    world.restricted = True  # the policy protects the machine in restricted mode too
    assert world.power.thermal_shutdown("vm1") is PowerState.POWERING_OFF
    view = world.power.get_power(GUEST)
    assert (view.state, view.last_reset_cause) == (PowerState.POWERING_OFF,
                                                   ResetCause.THERMAL_EVENT)
    assert world.power.thermal_shutdown("vm1") is None  # under way: nothing more
    world.advance(GRACEFUL)  # no OS obeys the power button: the power goes off
    view = world.power.get_power(GUEST)
    assert (view.state, view.last_reset_cause, view.last_reset_time) == (
        PowerState.OFF, ResetCause.THERMAL_EVENT, world.moment)
    [entry] = world.audit("ThermalShutdown")
    assert (entry.principal, entry.domain_id, entry.outcome) == ("admin:platform", "vm1", "ok")
    assert world.power.thermal_shutdown("vm1") is None  # off: nothing


def test_a_thermal_shutdown_of_a_booting_or_paused_machine_is_immediate(world: World) -> None:
    world.power.reset(GUEST, ResetType.ON)
    assert world.power.thermal_shutdown("vm1") is PowerState.OFF
    on(world)
    world.power.reset(GUEST, ResetType.PAUSE)
    assert world.power.thermal_shutdown("vm1") is PowerState.OFF
    view = world.power.get_power(GUEST)
    assert (view.state, view.last_reset_cause) == (PowerState.OFF, ResetCause.THERMAL_EVENT)
    assert len(world.audit("ThermalShutdown")) == 2
