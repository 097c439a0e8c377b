"""The thermal model (bios_ws.domain.thermal): heating under load, cooling when idle or off,
the first-order lag, the profiles, the fan curve, the ambient, and the overrides as floors."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest

from bios_ws.domain.thermal import (
    DEFAULT_AMBIENT,
    FAN_CURVES,
    FANS,
    HEAT_CAPACITY,
    Conditions,
    Floor,
    PowerProfile,
    ThermalProfile,
    advance,
    cpu_load,
    fan_readings,
    power_profile,
    resistance,
    steady,
    target,
    thermal_profile,
)

IDLE = Conditions(powered=True, load=0.03)
BUSY = Conditions(powered=True, load=1.0)
OFF = Conditions(powered=False, load=0.0)


def track(start: float, conditions: Conditions, seconds: int, every: int = 5) -> list[float]:
    temperatures = [start]
    for _ in range(0, seconds, every):
        temperatures.append(advance(temperatures[-1], every, conditions))
    return temperatures


def test_a_busy_machine_heats_steadily_towards_its_full_load_temperature() -> None:
    start = steady(IDLE)
    temperatures = track(start, BUSY, 300)
    assert all(b >= a for a, b in itertools.pairwise(temperatures))
    assert all(b > a for a, b in itertools.pairwise(temperatures[:13]))
    assert start == pytest.approx(34.9, abs=0.1)  # idle, BalancedPerformance, Default fans
    assert temperatures[-1] == pytest.approx(steady(BUSY), abs=0.05)
    assert steady(BUSY) == pytest.approx(65.3, abs=0.1)
    assert temperatures[3] - start > 10  # 15 s at full load: clearly warmer


def test_an_idle_machine_cools_and_one_without_power_cools_to_the_ambient() -> None:
    hot = 60.0
    idle = track(hot, IDLE, 300)
    off = track(hot, OFF, 600)
    assert all(b <= a for a, b in itertools.pairwise(idle))
    assert idle[12] < idle[0] - 20
    assert idle[-1] == pytest.approx(steady(IDLE), abs=0.05)
    assert off[-1] == pytest.approx(DEFAULT_AMBIENT, abs=0.01)
    assert OFF.fan_speed(hot) == 0.0 and OFF.watts() == 0.0


def test_the_lag_is_first_order_with_the_time_constant_of_r_times_c() -> None:
    # below 40 degC the fans turn at their lowest speed: the equation is linear
    r = resistance(FAN_CURVES[ThermalProfile.DEFAULT].low)
    tau = r * HEAT_CAPACITY
    goal = target(DEFAULT_AMBIENT, IDLE)
    assert goal == pytest.approx(DEFAULT_AMBIENT + IDLE.watts() * r)
    after = advance(DEFAULT_AMBIENT, tau, IDLE)
    assert after == pytest.approx(goal - (goal - DEFAULT_AMBIENT) * math.exp(-1), abs=1e-9)
    # an interval read in two parts gives what it gives in one
    assert advance(advance(DEFAULT_AMBIENT, 2.5, IDLE), 7.5, IDLE) == pytest.approx(
        advance(DEFAULT_AMBIENT, 10.0, IDLE), abs=1e-9)


def test_a_long_interval_ends_at_the_steady_temperature_whatever_the_start() -> None:
    for start in (10.0, 40.0, 95.0):
        assert advance(start, 86400.0, BUSY) == pytest.approx(steady(BUSY), abs=1e-6)
    assert advance(42.0, 0.0, BUSY) == 42.0
    assert advance(42.0, -5.0, BUSY) == 42.0
    with pytest.raises(ValueError):
        advance(math.nan, 1.0, BUSY)


def test_the_power_profile_changes_the_heat() -> None:
    full = {p: steady(replace(BUSY, power=p)) for p in PowerProfile}
    assert full[PowerProfile.MAX_PERFORMANCE] > full[PowerProfile.BALANCED] > full[
        PowerProfile.POWER_SAVING]
    assert full[PowerProfile.CUSTOM] == full[PowerProfile.BALANCED]
    idle = {p: steady(replace(IDLE, power=p)) for p in PowerProfile}
    assert idle[PowerProfile.MAX_PERFORMANCE] > idle[PowerProfile.POWER_SAVING]


def test_the_thermal_profile_changes_the_fans_and_so_the_temperature() -> None:
    full = {p: steady(replace(BUSY, fans=p)) for p in ThermalProfile}
    assert full[ThermalProfile.MINIMUM_POWER] > full[ThermalProfile.DEFAULT] > full[
        ThermalProfile.MAXIMUM_PERFORMANCE]
    # the hottest corner: most power, quietest fans, still below the default caution
    worst = steady(replace(BUSY, power=PowerProfile.MAX_PERFORMANCE,
                           fans=ThermalProfile.MINIMUM_POWER))
    assert 75.0 < worst < 90.0


def test_profiles_are_read_from_attribute_values_with_defaults() -> None:
    assert power_profile("PowerSaving") is PowerProfile.POWER_SAVING
    assert power_profile(None) is PowerProfile.BALANCED
    assert power_profile("Turbo") is PowerProfile.BALANCED
    assert thermal_profile("MinimumPower") is ThermalProfile.MINIMUM_POWER
    assert thermal_profile(None) is ThermalProfile.DEFAULT


@pytest.mark.parametrize("profile", list(ThermalProfile))
def test_the_fan_curve_rises_with_the_temperature(profile: ThermalProfile) -> None:
    curve = FAN_CURVES[profile]
    speeds = [curve.speed(t) for t in range(0, 120)]
    assert all(b >= a for a, b in itertools.pairwise(speeds))
    assert speeds[0] == curve.low and speeds[-1] == curve.high
    middle = curve.speed((curve.cool + curve.hot) / 2)
    assert middle == pytest.approx((curve.low + curve.high) / 2)
    assert 0.0 < curve.low < curve.high <= 1.0


def test_fan_readings_in_percent_and_rpm() -> None:
    readings = fan_readings(0.5)
    assert [(f.name, f.speed_percent, f.rpm) for f in readings] == [
        (name, 50.0, full / 2) for name, full in FANS]
    assert [f.rpm for f in fan_readings(0.0)] == [0, 0]


def test_a_host_ambient_shifts_every_temperature() -> None:
    warm = replace(IDLE, ambient=30.0)
    assert steady(warm) == pytest.approx(steady(IDLE) + 5.0, abs=0.01)  # fans: below 40
    assert steady(replace(OFF, ambient=18.5)) == pytest.approx(18.5)


def test_a_cpu_override_raises_the_reading_and_drives_the_fans_not_the_model() -> None:
    drill = replace(IDLE, cpu_floor=Floor(95.0))
    assert drill.cpu_reading(35.0) == 95.0
    assert drill.cpu_reading(96.5) == 96.5  # a floor: never below the model
    assert drill.fan_speed(35.0) == 1.0  # the fans follow what the sensor reads
    # the model itself cools faster with the fans at full speed: physics, not the override
    assert advance(40.0, 30.0, drill) < advance(40.0, 30.0, IDLE)
    assert drill.cpu_reading(35.0, offset=10.0) == 95.0


def test_an_override_ends_within_an_interval() -> None:
    drill = replace(IDLE, cpu_floor=Floor(95.0, until=10.0), inlet_floor=Floor(45.0, until=10.0))
    assert drill.cpu_reading(35.0, offset=9.9) == 95.0
    assert drill.cpu_reading(35.0, offset=10.0) == 35.0
    assert drill.ambient_at(5.0) == 45.0 and drill.ambient_at(10.0) == DEFAULT_AMBIENT


def test_an_inlet_override_heats_the_model_as_a_hot_room_would() -> None:
    hot_room = replace(IDLE, inlet_floor=Floor(40.0))
    start = steady(IDLE)
    assert advance(start, 60.0, hot_room) > start + 10.0
    cold_room = replace(IDLE, inlet_floor=Floor(5.0))  # a floor below the ambient: nothing
    assert advance(start, 60.0, cold_room) == pytest.approx(advance(start, 60.0, IDLE))


def test_cpu_load_from_two_readings_of_cpu_seconds() -> None:
    assert cpu_load(15.0, 10.0, 10.0) == pytest.approx(0.5)
    assert cpu_load(30.0, 10.0, 10.0) == 1.0  # capped: one host core
    assert cpu_load(10.0, 10.0, 10.0) == 0.0
    assert cpu_load(2.0, 50.0, 10.0) == pytest.approx(0.2)  # a new QEMU since: all of its use
    assert cpu_load(3.0, None, 10.0) == pytest.approx(0.3)  # started within the interval
    assert cpu_load(None, 10.0, 10.0) is None  # no process now
    assert cpu_load(15.0, 10.0, 0.0) is None  # no time between the readings
