"""The thermal policy of a domain, as a BMC keeps it: thresholds with hysteresis, the level
the CPU sensor is at, the admin's overrides, and what the store keeps between readings.

Levels go up as soon as the reading reaches a threshold, and come down only once it is
below that threshold by the hysteresis, so a reading that hovers at a threshold does not
flap. An override is a floor: while it lasts a sensor reads at least its value, never
less than the model, so an override can raise an alarm but never hide one (a fatal
state least of all). Standard library only.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum

from bios_ws.errors import InvalidRequest


class Sensor(StrEnum):
    """The temperature sensors of a domain."""

    CPU = "CPU"
    INLET = "Inlet"


#: Redfish ``PhysicalContext`` of each sensor.
PHYSICAL_CONTEXT = {Sensor.CPU: "CPU", Sensor.INLET: "Intake"}


class ThermalLevel(IntEnum):
    """Where the CPU sensor's reading is, from the thresholds it has crossed."""

    NORMAL = 0
    CAUTION = 1
    CRITICAL = 2
    FATAL = 3

    @property
    def label(self) -> str:
        return self.name.capitalize()

    @property
    def health(self) -> str:
        """Redfish ``Health``: OK, Warning (caution) or Critical (critical, fatal)."""
        return ("OK", "Warning", "Critical", "Critical")[self]

    @classmethod
    def of_label(cls, label: str) -> ThermalLevel:
        return cls[label.upper()]


#: Limits of what an admin may set [degC].
THRESHOLD_RANGE = (30.0, 150.0)
MAX_HYSTERESIS = 20.0
OVERRIDE_RANGE = (-40.0, 150.0)
#: The longest an override lasts.
MAX_OVERRIDE = timedelta(hours=1)


@dataclass(frozen=True)
class Thresholds:
    """The CPU sensor's thresholds (Redfish UpperCaution, UpperCritical, UpperFatal) and
    the hysteresis of each [degC]."""

    caution: float = 80.0
    critical: float = 90.0
    fatal: float = 100.0
    hysteresis: float = 2.0

    def of(self, level: ThermalLevel) -> float:
        """The threshold that starts ``level`` (-inf for Normal)."""
        return (-math.inf, self.caution, self.critical, self.fatal)[level]

    def check(self) -> Thresholds:
        """These thresholds, or InvalidRequest naming the field at fault."""
        low, high = THRESHOLD_RANGE
        for name, value in (("UpperCaution", self.caution), ("UpperCritical", self.critical),
                            ("UpperFatal", self.fatal)):
            if not math.isfinite(value) or not low <= value <= high:
                raise InvalidRequest(f"{name} must be between {low:g} and {high:g} degC,"
                                     f" not {value!r}", attribute=name)
        if not self.caution < self.critical < self.fatal:
            raise InvalidRequest("the thresholds must rise: UpperCaution < UpperCritical <"
                                 f" UpperFatal (given {self.caution:g}, {self.critical:g},"
                                 f" {self.fatal:g})", attribute="UpperCritical")
        if not math.isfinite(self.hysteresis) or not 0.0 <= self.hysteresis <= MAX_HYSTERESIS:
            raise InvalidRequest(f"Hysteresis must be between 0 and {MAX_HYSTERESIS:g} degC,"
                                 f" not {self.hysteresis!r}", attribute="Hysteresis")
        return self


DEFAULT_THRESHOLDS = Thresholds()


def reached(reading: float, thresholds: Thresholds) -> ThermalLevel:
    """The highest level whose threshold ``reading`` reaches (no hysteresis)."""
    for level in (ThermalLevel.FATAL, ThermalLevel.CRITICAL, ThermalLevel.CAUTION):
        if reading >= thresholds.of(level):
            return level
    return ThermalLevel.NORMAL


def next_level(reading: float, thresholds: Thresholds, previous: ThermalLevel
               ) -> ThermalLevel:
    """The level after ``previous`` for ``reading``: up at once to any threshold reached;
    down one level at a time, each once the reading is below that level's threshold by
    the hysteresis."""
    up = reached(reading, thresholds)
    if up >= previous:
        return up
    level = previous
    while level > up and reading < thresholds.of(level) - thresholds.hysteresis:
        level = ThermalLevel(level - 1)
    return level


@dataclass(frozen=True)
class SensorOverride:
    """A sensor reads at least ``value`` until ``expires_at`` (an admin's drill)."""

    sensor: Sensor
    value: float
    expires_at: datetime
    set_by: str

    def active(self, now: datetime) -> bool:
        return now < self.expires_at


def sensor_named(name: str) -> Sensor:
    """The sensor ``name`` names; InvalidRequest (attribute Sensor) for any other."""
    try:
        return Sensor(name)
    except ValueError:
        raise InvalidRequest(f"no sensor {name[:32]!r}: the sensors are"
                             f" {', '.join(s.value for s in Sensor)}",
                             attribute="Sensor") from None


def check_override(sensor: str, value: float, lasting: timedelta) -> Sensor:
    """The sensor named, or InvalidRequest for an unknown sensor, a value out of range, or
    a duration that is not positive or longer than ``MAX_OVERRIDE``."""
    known = sensor_named(sensor)
    low, high = OVERRIDE_RANGE
    if not math.isfinite(value) or not low <= value <= high:
        raise InvalidRequest(f"an override reads between {low:g} and {high:g} degC,"
                             f" not {value!r}", attribute="Reading")
    if not timedelta(0) < lasting <= MAX_OVERRIDE:
        raise InvalidRequest("an override lasts more than 0 seconds and at most"
                             f" {int(MAX_OVERRIDE.total_seconds())}", attribute="DurationSeconds")
    return known


@dataclass(frozen=True)
class ThermalRecord:
    """What the store keeps of a domain's thermal state: the model's temperature at
    ``updated_at`` and the machine's CPU seconds then (the next reading measures the load
    from them), the level the policy last acted on, the thresholds and the overrides.
    ``version`` is the compare-and-set of every change (several processes evaluate)."""

    domain_id: str
    temperature: float
    updated_at: datetime
    version: int = 1
    cpu_seconds: float | None = None
    #: The CPU use (0..1) measured over the interval that ended at ``updated_at``.
    load: float = 0.0
    level: ThermalLevel = ThermalLevel.NORMAL
    thresholds: Thresholds = DEFAULT_THRESHOLDS
    overrides: tuple[SensorOverride, ...] = field(default=())

    def override(self, sensor: Sensor, now: datetime) -> SensorOverride | None:
        """The override of ``sensor`` in force at ``now``."""
        for override in self.overrides:
            if override.sensor is sensor and override.active(now):
                return override
        return None

    def changed(self, **changes: object) -> ThermalRecord:
        """This record with ``changes``, one version on."""
        return dataclasses.replace(self, version=self.version + 1, **changes)  # type: ignore[arg-type]

    def with_override(self, override: SensorOverride) -> ThermalRecord:
        kept = tuple(o for o in self.overrides if o.sensor is not override.sensor)
        return self.changed(overrides=(*kept, override))

    def without_override(self, sensor: Sensor) -> ThermalRecord:
        return self.changed(overrides=tuple(o for o in self.overrides if o.sensor is not sensor))

    def active_overrides(self, now: datetime) -> tuple[SensorOverride, ...]:
        return tuple(o for o in self.overrides if o.active(now))


#: How close to the ambient a machine without power is settled [degC].
SETTLED_DEGREES = 0.05


def settled_off(record: ThermalRecord | None, ambient: float, now: datetime) -> bool:
    """Whether the thermal record of a machine without power has nothing left to change:
    at the ambient (or none yet), at Normal with the ambient's reading, no override in
    force. The policy leaves such a record alone until the machine powers on."""
    thresholds = DEFAULT_THRESHOLDS if record is None else record.thresholds
    if reached(ambient, thresholds) is not ThermalLevel.NORMAL:
        return False
    return record is None or (record.level is ThermalLevel.NORMAL
                              and not record.active_overrides(now)
                              and abs(record.temperature - ambient) <= SETTLED_DEGREES)
