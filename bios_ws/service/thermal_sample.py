"""One reading of a domain's thermal state: the model advanced from its stored record to
now with what the machine did meanwhile (``bios_ws.domain.thermal``).

A reading asks the machine's platform for its live power state and CPU seconds, the
host for its ambient temperature, and the domain's settings for its PowerProfile and
ThermalProfile. It changes nothing: the use case decides what to store.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from bios_ws.domain.power import MachineKind, PowerState, is_running
from bios_ws.domain.thermal import (
    DEFAULT_AMBIENT,
    Conditions,
    FanReading,
    Floor,
    advance,
    cpu_load,
    fan_readings,
    power_profile,
    steady,
    thermal_profile,
)
from bios_ws.domain.thermal_policy import (
    Sensor,
    SensorOverride,
    ThermalLevel,
    ThermalRecord,
    Thresholds,
    next_level,
)
from bios_ws.errors import PlatformUnavailable
from bios_ws.platform.port import Platform

#: The attributes that change the model.
POWER_PROFILE = "PowerProfile"
THERMAL_PROFILE = "ThermalProfile"
#: Where the ambient comes from.
HOST_SENSORS, DEFAULT = "HostSensors", "Default"
#: The host's ambient temperature from its sensors, or None when it has none.
AmbientSource = Callable[[], float | None]
#: A domain's current setting of an attribute (None: the registry has none).
Setting = Callable[[str, str], object]


@dataclass(frozen=True)
class SensorView:
    sensor: Sensor
    #: What the sensor reads [degC]: the model's value, or an override's if higher.
    reading: float
    #: The model's own value [degC], as if no override were in force.
    model: float
    #: The CPU sensor's thresholds (the Inlet sensor has none).
    thresholds: Thresholds | None
    override: SensorOverride | None


@dataclass(frozen=True)
class ThermalView:
    """A domain's thermal state at ``time``."""

    domain_id: str
    time: datetime
    power_state: PowerState
    #: The level the CPU sensor's reading is at now (the policy acts on it at its period).
    level: ThermalLevel
    #: CPU use (0..1) and the power the model dissipates [W].
    load: float
    watts: float
    ambient_source: str
    sensors: tuple[SensorView, ...]
    fans: tuple[FanReading, ...]

    def sensor(self, sensor: Sensor) -> SensorView:
        return next(view for view in self.sensors if view.sensor is sensor)


@dataclass(frozen=True)
class Sample:
    """The record advanced to ``view.time`` (one version on, the level kept as stored; not
    saved), the view of it, and the record it came from (None: the domain had none)."""

    record: ThermalRecord
    view: ThermalView
    stored: ThermalRecord | None


class Sampler:
    def __init__(self, platforms: Mapping[MachineKind, Platform], setting: Setting,
                 ambient: AmbientSource) -> None:
        self._platforms = platforms
        self._setting = setting
        self._ambient = ambient

    def ambient(self) -> float:
        """The ambient temperature now: the host's sensors', else the default."""
        host = self._ambient()
        return DEFAULT_AMBIENT if host is None else host

    def sample(self, domain_id: str, kind: MachineKind, stored: ThermalRecord | None,
               now: datetime, powered_since: datetime | None = None) -> Sample:
        """Read the machine and advance ``stored`` to ``now`` (see the module docstring).
        ``powered_since``: when the machine last powered on, if it runs as the store says;
        a record taken while it had no power (the policy leaves a settled one alone) is
        first brought to that moment without power."""
        platform = self._platforms.get(kind)
        if platform is None:
            raise PlatformUnavailable(f"this service runs no {kind.value} machines")
        state = platform.status(domain_id)
        powered = is_running(state)
        cpu = platform.cpu_seconds(domain_id) if powered else None
        host = self._ambient()
        base = Conditions(
            powered=powered, load=0.0,
            ambient=DEFAULT_AMBIENT if host is None else host,
            power=power_profile(self._setting(domain_id, POWER_PROFILE)),
            fans=thermal_profile(self._setting(domain_id, THERMAL_PROFILE)))
        origin = _before_power_on(domain_id, stored, base, powered_since, now) \
            if powered else stored
        if origin is None:
            conditions = base
            elapsed = 0.0
            record = ThermalRecord(domain_id, steady(conditions), now, version=1,
                                   cpu_seconds=cpu)
        else:
            elapsed = max((now - origin.updated_at).total_seconds(), 0.0)
            measured = cpu_load(cpu, origin.cpu_seconds, elapsed)
            load = 0.0 if not powered else origin.load if measured is None else measured
            conditions = replace(base, load=load,
                                 cpu_floor=_floor(origin, Sensor.CPU),
                                 inlet_floor=_floor(origin, Sensor.INLET))
            record = origin.changed(
                temperature=advance(origin.temperature, elapsed, conditions),
                updated_at=now, cpu_seconds=cpu, load=load)
        return Sample(record, _view(record, conditions, elapsed, state, host is not None),
                      stored)


def _before_power_on(domain_id: str, stored: ThermalRecord | None, base: Conditions,
                     powered_since: datetime | None, now: datetime) -> ThermalRecord | None:
    """``stored`` as it was when the machine powered on, if it was taken before, with the
    machine off (no CPU seconds) and no override in force: cooled towards the ambient
    until then (the first record of a machine is the ambient then). Else ``stored``."""
    if powered_since is None or not powered_since < now:
        return stored
    off = replace(base, powered=False)
    if stored is None:
        return ThermalRecord(domain_id, steady(off), powered_since, version=0)
    if stored.cpu_seconds is not None or not stored.updated_at < powered_since \
            or stored.active_overrides(stored.updated_at):
        return stored
    gap = (powered_since - stored.updated_at).total_seconds()
    return replace(stored, temperature=advance(stored.temperature, gap, off),
                   updated_at=powered_since)


def _floor(stored: ThermalRecord, sensor: Sensor) -> Floor | None:
    """The override of ``sensor`` as a floor, its end counted from the record's time."""
    override = stored.override(sensor, stored.updated_at)
    if override is None:
        return None
    return Floor(override.value, (override.expires_at - stored.updated_at).total_seconds())


def _view(record: ThermalRecord, conditions: Conditions, elapsed: float, state: PowerState,
          host_sensors: bool) -> ThermalView:
    now = record.updated_at
    model = record.temperature
    cpu = conditions.cpu_reading(model, elapsed)
    ambient = conditions.ambient_at(elapsed)
    sensors = (
        SensorView(Sensor.CPU, round(cpu, 2), round(model, 2), record.thresholds,
                   record.override(Sensor.CPU, now)),
        SensorView(Sensor.INLET, round(ambient, 2), round(conditions.ambient, 2), None,
                   record.override(Sensor.INLET, now)),
    )
    return ThermalView(
        domain_id=record.domain_id, time=now, power_state=state,
        level=next_level(cpu, record.thresholds, record.level),
        load=conditions.load, watts=round(conditions.watts(), 2),
        ambient_source=HOST_SENSORS if host_sensors else DEFAULT, sensors=sensors,
        fans=fan_readings(conditions.fan_speed(model, elapsed)))
