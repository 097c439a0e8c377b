"""The thermal use case over simulated machines in memory, on a clock the test moves:
readings, the profiles and the ambient, the policy's crossings, alerts and shutdowns, and
the admin's thresholds and overrides."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from bios_ws.domain.audit import AuditEntry
from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.firmware import KeyDatabases
from bios_ws.domain.ports import UnitOfWork
from bios_ws.domain.power import MachineKind, PowerState, ResetCause, ResetType
from bios_ws.domain.principal import Principal
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.domain.state import ApplyTime
from bios_ws.domain.thermal import DEFAULT_AMBIENT
from bios_ws.domain.thermal_policy import Sensor, ThermalLevel
from bios_ws.errors import (
    AccessDenied,
    DomainNotFound,
    InvalidRequest,
    ServiceRestricted,
    StoreUnavailable,
)
from bios_ws.platform.simulated import SimulatedPlatform, StateShelf
from bios_ws.service.bios import BiosService
from bios_ws.service.boot import MachineObserver
from bios_ws.service.domains import DomainService
from bios_ws.service.power import PowerService
from bios_ws.service.thermal import ThermalService
from bios_ws.service.thermal_alerts import ThermalAlert, ThermalAlerts
from bios_ws.soap.testing import ManualClock

BOOT, GRACEFUL = 2.0, 30.0
GUEST = Principal.guest("vm1")
ADMIN = Principal.admin("root")
MINUTE = timedelta(minutes=1)


@dataclass
class World:
    store: MemoryStore
    bios: BiosService
    domains: DomainService
    power: PowerService
    thermal: ThermalService
    clock: ManualClock
    alerts: list[tuple[str, ThermalAlert]] = field(default_factory=list)
    host: float | None = None
    restricted: bool = False

    def service(self) -> ThermalService:
        """Another process's use case over the same store and machines."""
        return ThermalService(self.store.unit_of_work, self.clock.now,
                              self.power._platforms, self.bios, self.power,
                              alerts=recording(self.alerts), ambient=lambda: self.host)

    def run(self, seconds: float, every: float = 1.0) -> None:
        """Let ``seconds`` pass, the policy evaluating every ``every`` seconds."""
        for _ in range(round(seconds / every)):
            self.clock.advance(every)
            self.thermal.evaluate()

    def cpu(self, domain_id: str = "vm1") -> float:
        return self.thermal.thermal(ADMIN, domain_id).sensor(Sensor.CPU).reading

    def audit(self, operation: str) -> list[AuditEntry]:
        return [e for e in self.store.audit if e.operation == operation]


def recording(into: list[tuple[str, ThermalAlert]]) -> ThermalAlerts:
    def hook(kind: str) -> object:
        def record(uow: UnitOfWork, alert: ThermalAlert) -> None:
            assert uow.thermal.get(alert.domain_id) is not None  # inside the unit
            into.append((kind, alert))
        return record

    return ThermalAlerts(critical=hook("critical"), fatal=hook("fatal"),  # type: ignore[arg-type]
                         cleared=hook("cleared"))


@pytest.fixture
def world(shipped_registry: AttributeRegistry) -> World:
    store = MemoryStore()
    clock = ManualClock(datetime(2026, 7, 1, tzinfo=UTC))
    holder: list[World] = []

    def gate() -> None:
        if holder and holder[0].restricted:
            raise ServiceRestricted("the host is untrusted")

    bios = BiosService(store.unit_of_work, shipped_registry, clock.now)
    observer = MachineObserver(store.unit_of_work, bios, clock.now, KeyDatabases)
    platform = SimulatedPlatform(StateShelf(), observer.hooks(), clock=clock.seconds,
                                 boot_seconds=BOOT, graceful_timeout=GRACEFUL)
    platforms = {MachineKind.SIMULATED: platform}
    domains = DomainService(store.unit_of_work, shipped_registry, platforms, clock.now)
    power = PowerService(store.unit_of_work, clock.now, platforms, bios)
    alerts: list[tuple[str, ThermalAlert]] = []
    thermal = ThermalService(store.unit_of_work, clock.now, platforms, bios, power,
                             alerts=recording(alerts), ambient=lambda: holder[0].host,
                             gate=gate)
    holder.append(World(store, bios, domains, power, thermal, clock, alerts))
    domains.create(ADMIN, "vm1")
    domains.create(ADMIN, "vm2")
    return holder[0]


def test_an_off_domain_reads_the_ambient_and_a_reading_writes_nothing(world: World) -> None:
    view = world.thermal.thermal(GUEST)
    assert (view.domain_id, view.power_state, view.level, view.load, view.watts) == (
        "vm1", PowerState.OFF, ThermalLevel.NORMAL, 0.0, 0.0)
    assert [(s.sensor, s.reading) for s in view.sensors] == [
        (Sensor.CPU, DEFAULT_AMBIENT), (Sensor.INLET, DEFAULT_AMBIENT)]
    assert [f.speed_percent for f in view.fans] == [0.0, 0.0]
    assert view.ambient_source == "Default" and view.time == world.clock.now()
    assert world.store.thermal == {}
    assert world.thermal.thermal(ADMIN, "vm2").domain_id == "vm2"


def test_a_guest_reads_its_own_domain_only(world: World) -> None:
    with pytest.raises(AccessDenied):
        world.thermal.thermal(GUEST, "vm2")
    with pytest.raises(AccessDenied):
        world.thermal.thermal(ADMIN)
    with pytest.raises(DomainNotFound):
        world.thermal.thermal(ADMIN, "vm9")


def test_a_domain_heats_while_it_boots_and_cools_while_it_idles(world: World) -> None:
    world.run(1)  # the first record: off, at the ambient
    world.power.reset(GUEST, ResetType.ON)
    world.run(BOOT)
    assert world.cpu() > DEFAULT_AMBIENT + 2  # two seconds at one core
    world.run(300, every=5)
    view = world.thermal.thermal(GUEST)
    assert view.power_state is PowerState.ON
    assert view.load == pytest.approx(0.03) and view.watts > 0
    idle = view.sensor(Sensor.CPU).reading
    assert idle == pytest.approx(34.9, abs=0.1)
    for _ in range(10):  # booting again and again: 20 s at one core
        world.power.reset(GUEST, ResetType.FORCE_RESTART)
        world.run(BOOT)
    hot = world.cpu()
    assert hot > idle + 10
    world.run(60)
    assert idle < world.cpu() < hot - 8  # back in the boot manager: it cools
    world.power.reset(GUEST, ResetType.FORCE_OFF)
    world.run(300, every=5)
    assert world.cpu() == pytest.approx(DEFAULT_AMBIENT, abs=0.1)
    assert world.thermal.thermal(GUEST).fans[0].speed_percent == 0.0


def test_the_profiles_change_the_readings(world: World) -> None:
    world.bios.set_attributes(Principal.guest("vm2"), {"ThermalProfile": "MinimumPower"})
    world.bios.set_attributes(GUEST, {"PowerProfile": "PowerSaving"}, ApplyTime.ON_RESET)
    for guest in (GUEST, Principal.guest("vm2")):
        world.power.reset(guest, ResetType.ON)
    world.run(600, every=10)
    quiet, saving = world.cpu("vm2"), world.cpu("vm1")
    default = world.thermal.thermal(ADMIN, "vm2").fans[0].speed_percent
    assert quiet > saving  # quieter fans run hotter; PowerSaving draws less
    assert default == 15.0  # MinimumPower's slowest fan
    assert world.thermal.thermal(GUEST).watts < world.thermal.thermal(ADMIN, "vm2").watts


def test_the_host_sensors_give_the_ambient(world: World) -> None:
    world.host = 31.5
    view = world.thermal.thermal(GUEST)
    assert view.ambient_source == "HostSensors"
    assert view.sensor(Sensor.INLET).reading == 31.5 == view.sensor(Sensor.CPU).reading


def test_a_critical_override_is_audited_and_alerted_once(world: World) -> None:
    world.power.reset(GUEST, ResetType.ON)
    world.run(BOOT)
    view = world.thermal.override(ADMIN, "vm1", "CPU", 91.5, MINUTE)
    cpu = view.sensor(Sensor.CPU)
    assert (cpu.reading, view.level) == (91.5, ThermalLevel.CRITICAL)
    assert cpu.override is not None and cpu.override.expires_at == world.clock.now() + MINUTE
    assert cpu.model < 40 and world.alerts == []  # the policy acts at its period
    assert [e.outcome for e in world.audit("OverrideSensor")] == ["ok"]
    world.run(5)
    [(kind, alert)] = world.alerts
    assert (kind, alert.domain_id, alert.level, alert.previous, alert.reading) == (
        "critical", "vm1", ThermalLevel.CRITICAL, ThermalLevel.NORMAL, 91.5)
    assert alert.overridden and alert.threshold == 90.0
    assert "reached UpperCritical 90" in alert.message
    assert len(world.audit("ThermalCrossing")) == 1
    world.run(60)  # the override ends: the reading falls back
    kinds = [kind for kind, _ in world.alerts]
    assert kinds == ["critical", "cleared"]
    assert world.thermal.thermal(GUEST).sensor(Sensor.CPU).override is None
    assert world.store.thermal["vm1"].overrides == ()  # pruned
    assert world.thermal.thermal(GUEST).power_state is PowerState.ON


def test_processes_evaluating_at_once_record_each_crossing_once(world: World) -> None:
    world.power.reset(GUEST, ResetType.ON)
    world.run(BOOT)
    world.thermal.override(ADMIN, "vm1", "CPU", 95.0, MINUTE)
    world.clock.advance(1)
    both = threading.Barrier(2)

    def sample_together() -> float | None:
        both.wait(timeout=5)  # each process has read the store; then both write
        return None

    world.host = None
    others = [world.service() for _ in range(2)]
    for other in others:
        other._sampler._ambient = sample_together
    crossings: list[list[ThermalAlert]] = []
    threads = [threading.Thread(target=lambda o=o: crossings.append(o.evaluate()))
               for o in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(c) for c in crossings) == [0, 1]
    assert [kind for kind, _ in world.alerts] == ["critical"]
    assert len(world.audit("ThermalCrossing")) == 1
    assert world.thermal.evaluate(min_gap=5.0) == []  # just evaluated: left alone


def test_a_fatal_override_shuts_the_domain_down_gracefully(world: World) -> None:
    world.power.reset(GUEST, ResetType.ON)
    world.run(BOOT)
    world.thermal.override(ADMIN, "vm1", "CPU", 104.0, MINUTE * 10)
    world.run(1)
    assert [kind for kind, _ in world.alerts] == ["fatal"]
    power = world.power.get_power(GUEST)
    assert (power.state, power.last_reset_cause) == (PowerState.POWERING_OFF,
                                                     ResetCause.THERMAL_EVENT)
    world.run(GRACEFUL)
    power = world.power.get_power(GUEST)
    assert (power.state, power.last_reset_cause) == (PowerState.OFF, ResetCause.THERMAL_EVENT)
    assert len(world.audit("ThermalShutdown")) == 1
    world.power.reset(GUEST, ResetType.ON)  # powered on while the drill still says fatal
    world.run(1)
    assert world.power.get_power(GUEST).state is PowerState.OFF  # booting: off at once
    assert len(world.audit("ThermalShutdown")) == 2
    assert [kind for kind, _ in world.alerts] == ["fatal"]  # one crossing, two shutdowns


def test_an_override_below_the_model_never_hides_a_fatal_state(world: World) -> None:
    world.power.reset(GUEST, ResetType.ON)
    world.run(60)
    world.thermal.override(ADMIN, "vm1", "CPU", 31.0, MINUTE)
    world.thermal.set_thresholds(ADMIN, "vm1", 30.0, 31.0, 33.0, 0.5)  # idle is ~35 degC
    view = world.thermal.thermal(GUEST)
    cpu = view.sensor(Sensor.CPU)
    assert cpu.reading == cpu.model > 33.0 and view.level is ThermalLevel.FATAL
    world.run(1)
    [(kind, alert)] = world.alerts
    assert kind == "fatal" and not alert.overridden
    assert world.power.get_power(GUEST).last_reset_cause is ResetCause.THERMAL_EVENT


def test_hysteresis_keeps_a_hovering_reading_at_its_level(world: World) -> None:
    world.power.reset(GUEST, ResetType.ON)
    world.run(120)
    idle = world.cpu()
    world.thermal.set_thresholds(ADMIN, "vm1", idle - 4, idle - 0.2, idle + 40, 1.0)
    world.run(1)
    assert [kind for kind, _ in world.alerts] == ["critical"]
    world.thermal.set_thresholds(ADMIN, "vm1", idle - 4, idle + 0.5, idle + 40, 1.0)
    world.run(30)  # below UpperCritical, not below it by the hysteresis
    assert world.thermal.thermal(GUEST).level is ThermalLevel.CRITICAL
    world.thermal.set_thresholds(ADMIN, "vm1", idle - 4, idle + 1.5, idle + 40)  # kept: 1.0
    world.run(1)
    assert [kind for kind, _ in world.alerts] == ["critical", "cleared"]
    assert world.thermal.thermal(GUEST).level is ThermalLevel.CAUTION
    assert len(world.audit("ThermalCrossing")) == 2  # Normal->Critical->Caution, no flapping
    assert world.store.thermal["vm1"].thresholds.hysteresis == 1.0


@pytest.mark.parametrize(("call", "field"), [
    (lambda t: t.set_thresholds(ADMIN, "vm1", 90, 80, 100), "UpperCritical"),
    (lambda t: t.set_thresholds(ADMIN, "vm1", 80, 90, 100, -1), "Hysteresis"),
    (lambda t: t.override(ADMIN, "vm1", "GPU", 90, MINUTE), "Sensor"),
    (lambda t: t.override(ADMIN, "vm1", "CPU", 90, MINUTE * 61), "DurationSeconds"),
    (lambda t: t.override(ADMIN, "vm1", "CPU", 90), "DurationSeconds"),
    (lambda t: t.override(ADMIN, "vm1", "CPU", None, MINUTE), "DurationSeconds"),
    (lambda t: t.override(ADMIN, "vm1", "CPU", 151, MINUTE), "Reading"),
])
def test_refused_changes_are_typed_audited_and_change_nothing(
    world: World, call: object, field: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        call(world.thermal)  # type: ignore[operator]
    assert refused.value.attribute == field
    assert world.store.thermal == {}
    assert [e.outcome for e in world.store.audit[-1:]] == ["refused:InvalidRequest"]


def test_only_the_admin_changes_and_not_in_restricted_mode(world: World) -> None:
    with pytest.raises(AccessDenied):
        world.thermal.set_thresholds(GUEST, "vm1", 70, 80, 90)
    with pytest.raises(AccessDenied):
        world.thermal.override(GUEST, "vm1", "CPU", 90, MINUTE)
    with pytest.raises(DomainNotFound):
        world.thermal.override(ADMIN, "vm9", "CPU", 90, MINUTE)
    world.restricted = True
    with pytest.raises(ServiceRestricted):
        world.thermal.set_thresholds(ADMIN, "vm1", 70, 80, 90)
    assert world.store.thermal == {}
    assert [e.outcome for e in world.audit("SetThermalThresholds")] == [
        "refused:AccessDenied", "refused:ServiceRestricted"]


def test_clearing_an_override_and_deleting_the_domain(world: World) -> None:
    world.thermal.override(ADMIN, "vm1", "Inlet", 41.0, MINUTE)
    view = world.thermal.thermal(GUEST)
    assert view.sensor(Sensor.INLET).reading == 41.0
    assert world.thermal.override(ADMIN, "vm1", "Inlet", None).sensor(
        Sensor.INLET).reading == DEFAULT_AMBIENT
    assert world.thermal.override(ADMIN, "vm1", "CPU", None).level is ThermalLevel.NORMAL
    assert [e.outcome for e in world.audit("OverrideSensor")] == ["ok"] * 3
    world.domains.delete(ADMIN, "vm1")
    assert "vm1" not in world.store.thermal
    assert world.thermal.evaluate() == []
    assert "vm1" not in world.store.thermal  # a deleted domain gets no record again


def test_the_periodic_run_logs_a_store_it_cannot_reach_in_one_line(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def unreachable(min_gap: float = 0.0) -> list[ThermalAlert]:
        raise StoreUnavailable("the state store is unavailable")

    monkeypatch.setattr(world.thermal, "evaluate", unreachable)
    world.thermal.run_policy(2.5)
    [record] = caplog.records
    assert record.getMessage() == ("the thermal policy did not run: the state store is"
                                   " unavailable")
    assert record.exc_info is None


# -- what the policy leaves alone ---------------------------------------------------------


def test_the_policy_leaves_settled_off_machines_unread_and_unsaved(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """10,000 idle domains cost the policy two reads of the store, not 10,000 samples."""
    world.run(5)
    assert world.store.thermal == {}  # off at the ambient from the start: no record needed
    world.power.reset(GUEST, ResetType.ON)
    world.run(60)
    world.power.reset(GUEST, ResetType.FORCE_OFF)
    world.run(600, every=5)  # it cools to the ambient: settled
    settled = world.store.thermal["vm1"]
    sampled: list[str] = []
    real = world.thermal._sampler.sample
    monkeypatch.setattr(world.thermal._sampler, "sample",
                        lambda domain_id, *args: sampled.append(domain_id) or real(
                            domain_id, *args))
    world.run(60, every=5)
    assert sampled == [] and world.store.thermal["vm1"] == settled
    world.host = 30.0  # the room warms: the record at 25 degC follows it
    world.run(5)
    assert set(sampled) == {"vm1"}  # vm2 has no record: it reads the ambient when asked
    assert world.cpu("vm2") == 30.0


def test_an_ambient_at_a_threshold_is_never_settled(world: World) -> None:
    from bios_ws.domain.thermal_policy import settled_off

    now = world.clock.now()
    assert settled_off(None, DEFAULT_AMBIENT, now)
    assert not settled_off(None, 80.0, now)  # the default caution threshold
    world.host = 85.0
    world.run(5)
    assert world.thermal.thermal(ADMIN, "vm2").level is ThermalLevel.CAUTION
    assert [e.domain_id for e in world.audit("ThermalCrossing")] == ["vm1", "vm2"]


def test_a_machine_left_alone_while_off_heats_from_its_power_on_only(
        world: World) -> None:
    """The record of an off machine the policy left alone for an hour (vm1), or never
    made (vm2), is brought to the moment the machine powered on, off: 2 s after power-on
    the reading is 2 s of heating from the ambient (as in the test above), not the idle
    temperature (34.9) of a machine that has been on for the whole hour."""
    world.power.reset(GUEST, ResetType.ON)
    world.run(60)
    world.power.reset(GUEST, ResetType.FORCE_OFF)
    world.run(600, every=5)
    assert "vm1" in world.store.thermal and "vm2" not in world.store.thermal
    world.run(3600, every=600)  # left alone
    world.power.reset(GUEST, ResetType.ON)
    world.power.reset_domain(ADMIN, "vm2", ResetType.ON)
    world.clock.advance(BOOT)
    world.thermal.evaluate()
    for domain_id in ("vm1", "vm2"):
        assert DEFAULT_AMBIENT + 2 < world.cpu(domain_id) < DEFAULT_AMBIENT + 6
        assert world.store.thermal[domain_id].cpu_seconds is not None
