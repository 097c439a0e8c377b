"""The thermal model of a domain's machine: a simulated but honest CPU temperature and fans.

No sensor of this machine kind measures a guest (``docs/thermal.md``), so the temperature
is modelled from what is real: whether the machine holds power, its measured CPU load (a
``qemu`` machine's QEMU process), the host's ambient temperature when the host has
sensors, and the domain's ``PowerProfile`` and ``ThermalProfile``. Pure functions of their
inputs and of the time that passed; standard library only.

The model is one lumped thermal mass (die and heatsink) of heat capacity ``HEAT_CAPACITY``
heated by the machine's power and cooled towards the ambient through a thermal resistance
that the fans lower::

    P        = 0 (no power) | P_idle + (P_max - P_idle) * load      [W], per PowerProfile
    R(s)     = R_PASSIVE - (R_PASSIVE - R_FANS) * s                 [degC/W], s: fan speed 0..1
    T_target = T_ambient + P * R(s)
    dT/dt    = (T_target - T) / (R(s) * C)                          first-order lag

The fans follow the CPU sensor's reading through the ThermalProfile's fan curve (a
machine without power has its fans stopped). Between two readings the equation is solved
exactly in steps of at most ``STEP_SECONDS`` with the fan speed of each step's start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

#: The ambient temperature without host sensors [degC].
DEFAULT_AMBIENT = 25.0
#: Heat capacity of the lumped die and heatsink [J/degC].
HEAT_CAPACITY = 40.0
#: Thermal resistance to the ambient with the fans stopped, and at full speed [degC/W].
R_PASSIVE = 0.80
R_FANS = 0.30
#: Longest step of the integration [s].
STEP_SECONDS = 1.0
#: An interval longer than this is integrated over its last ``HORIZON_SECONDS`` only: by
#: then the start has no weight left (the slowest time constant is R_PASSIVE * C = 32 s,
#: and e^(-600/32) < 1e-8).
HORIZON_SECONDS = 600.0
#: Fans: the name and full speed [RPM] of each.
FANS: tuple[tuple[str, float], ...] = (("Fan1", 12000.0), ("Fan2", 9000.0))


class PowerProfile(StrEnum):
    """The ``PowerProfile`` attribute (``System Profile``)."""

    MAX_PERFORMANCE = "MaxPerformance"
    BALANCED = "BalancedPerformance"
    POWER_SAVING = "PowerSaving"
    CUSTOM = "Custom"


class ThermalProfile(StrEnum):
    """The ``ThermalProfile`` attribute: the fan curve."""

    DEFAULT = "Default"
    MAXIMUM_PERFORMANCE = "MaximumPerformance"
    MINIMUM_POWER = "MinimumPower"


@dataclass(frozen=True)
class PowerCurve:
    """Watts of a powered machine: ``idle`` at no load, ``full`` at full load."""

    idle: float
    full: float

    def watts(self, load: float) -> float:
        return self.idle + (self.full - self.idle) * min(max(load, 0.0), 1.0)


#: What each PowerProfile draws (Custom: as Balanced).
POWER_CURVES: dict[PowerProfile, PowerCurve] = {
    PowerProfile.MAX_PERFORMANCE: PowerCurve(idle=15.0, full=120.6),
    PowerProfile.BALANCED: PowerCurve(idle=12.0, full=100.0),
    PowerProfile.POWER_SAVING: PowerCurve(idle=9.0, full=70.6),
    PowerProfile.CUSTOM: PowerCurve(idle=12.0, full=100.0),
}


@dataclass(frozen=True)
class FanCurve:
    """Fan speed (0..1) by temperature: ``low`` up to ``cool`` degC, rising linearly to
    ``high`` at ``hot`` degC and above."""

    cool: float
    hot: float
    low: float
    high: float

    def speed(self, temperature: float) -> float:
        if temperature <= self.cool:
            return self.low
        if temperature >= self.hot:
            return self.high
        return self.low + (self.high - self.low) * (temperature - self.cool) / (
            self.hot - self.cool)


#: The fan curve of each ThermalProfile.
FAN_CURVES: dict[ThermalProfile, FanCurve] = {
    ThermalProfile.DEFAULT: FanCurve(cool=40.0, hot=75.0, low=0.25, high=1.0),
    ThermalProfile.MAXIMUM_PERFORMANCE: FanCurve(cool=35.0, hot=65.0, low=0.40, high=1.0),
    ThermalProfile.MINIMUM_POWER: FanCurve(cool=45.0, hot=85.0, low=0.15, high=0.70),
}


def power_profile(value: object) -> PowerProfile:
    """The profile an attribute's value names; Balanced for anything else (no attribute)."""
    try:
        return PowerProfile(str(value))
    except ValueError:
        return PowerProfile.BALANCED


def thermal_profile(value: object) -> ThermalProfile:
    try:
        return ThermalProfile(str(value))
    except ValueError:
        return ThermalProfile.DEFAULT


@dataclass(frozen=True)
class Floor:
    """A value a reading does not go below until ``until`` seconds into an interval
    (an admin's override; ``math.inf``: for the whole interval)."""

    value: float
    until: float = math.inf


@dataclass(frozen=True)
class Conditions:
    """What the machine was doing over an interval."""

    powered: bool
    #: CPU use, 0..1 (one host core busy is 1).
    load: float
    ambient: float = DEFAULT_AMBIENT
    power: PowerProfile = PowerProfile.BALANCED
    fans: ThermalProfile = ThermalProfile.DEFAULT
    #: Overrides: the CPU sensor's reading, and the ambient (the Inlet sensor).
    cpu_floor: Floor | None = None
    inlet_floor: Floor | None = None

    def watts(self) -> float:
        return POWER_CURVES[self.power].watts(self.load) if self.powered else 0.0

    def ambient_at(self, offset: float) -> float:
        """The ambient ``offset`` seconds into the interval (an Inlet override raises it)."""
        return _floored(self.ambient, self.inlet_floor, offset)

    def cpu_reading(self, temperature: float, offset: float = 0.0) -> float:
        """What the CPU sensor reads for a model temperature (a CPU override raises it)."""
        return _floored(temperature, self.cpu_floor, offset)

    def fan_speed(self, temperature: float, offset: float = 0.0) -> float:
        """The fans' speed (0..1) for a model temperature: the fan curve of the CPU
        sensor's reading; stopped without power."""
        if not self.powered:
            return 0.0
        return FAN_CURVES[self.fans].speed(self.cpu_reading(temperature, offset))


def _floored(value: float, floor: Floor | None, offset: float) -> float:
    if floor is None or offset >= floor.until:
        return value
    return max(value, floor.value)


def resistance(fan_speed: float) -> float:
    """Thermal resistance to the ambient at ``fan_speed`` (0..1) [degC/W]."""
    return R_PASSIVE - (R_PASSIVE - R_FANS) * min(max(fan_speed, 0.0), 1.0)


def target(temperature: float, conditions: Conditions, offset: float = 0.0) -> float:
    """Where the temperature heads from ``temperature`` (the fans at its speed)."""
    r = resistance(conditions.fan_speed(temperature, offset))
    return conditions.ambient_at(offset) + conditions.watts() * r


def advance(temperature: float, seconds: float, conditions: Conditions) -> float:
    """The model temperature ``seconds`` after it was ``temperature`` under ``conditions``
    (offsets of the overrides count from the interval's start)."""
    if not math.isfinite(temperature):
        raise ValueError("a temperature is a finite number")
    seconds = max(seconds, 0.0)
    offset = max(seconds - HORIZON_SECONDS, 0.0)
    while offset < seconds:
        step = min(STEP_SECONDS, seconds - offset)
        r = resistance(conditions.fan_speed(temperature, offset))
        goal = conditions.ambient_at(offset) + conditions.watts() * r
        temperature = goal + (temperature - goal) * math.exp(-step / (r * HEAT_CAPACITY))
        offset += step
    return temperature


def steady(conditions: Conditions) -> float:
    """The temperature the model settles at under ``conditions`` (from the ambient)."""
    return advance(conditions.ambient, HORIZON_SECONDS, conditions)


def cpu_load(seconds_now: float | None, seconds_before: float | None,
             elapsed: float) -> float | None:
    """The CPU use (0..1) between two readings of a machine's CPU seconds ``elapsed`` apart.

    None when it cannot be told (no process now, or no time between the readings). A
    counter lower than before belongs to a new process (a QEMU restarts at every reset):
    all its seconds fall in the interval."""
    if seconds_now is None or elapsed <= 0:
        return None
    used = seconds_now if seconds_before is None or seconds_now < seconds_before \
        else seconds_now - seconds_before
    return min(max(used / elapsed, 0.0), 1.0)


@dataclass(frozen=True)
class FanReading:
    name: str
    #: 0..100, one decimal.
    speed_percent: float
    rpm: float


def fan_readings(speed: float) -> tuple[FanReading, ...]:
    """Every fan at ``speed`` (0..1)."""
    return tuple(FanReading(name, round(speed * 100.0, 1), round(speed * full))
                 for name, full in FANS)
