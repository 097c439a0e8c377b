"""The thermal policy's rules (bios_ws.domain.thermal_policy): thresholds and their checks,
levels with hysteresis, overrides and the record that keeps them."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from bios_ws.domain.thermal import Conditions, Floor
from bios_ws.domain.thermal_policy import (
    DEFAULT_THRESHOLDS,
    MAX_OVERRIDE,
    Sensor,
    SensorOverride,
    ThermalLevel,
    ThermalRecord,
    Thresholds,
    check_override,
    next_level,
    reached,
)
from bios_ws.errors import InvalidRequest

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
N, CA, CR, F = (ThermalLevel.NORMAL, ThermalLevel.CAUTION, ThermalLevel.CRITICAL,
                ThermalLevel.FATAL)


def walk(readings: list[float], thresholds: Thresholds = DEFAULT_THRESHOLDS) -> list[str]:
    level, seen = N, []
    for reading in readings:
        level = next_level(reading, thresholds, level)
        seen.append(level.label)
    return seen


def test_the_default_thresholds() -> None:
    assert (DEFAULT_THRESHOLDS.caution, DEFAULT_THRESHOLDS.critical, DEFAULT_THRESHOLDS.fatal,
            DEFAULT_THRESHOLDS.hysteresis) == (80.0, 90.0, 100.0, 2.0)
    assert DEFAULT_THRESHOLDS.check() is DEFAULT_THRESHOLDS


@pytest.mark.parametrize(("thresholds", "field"), [
    (Thresholds(90, 80, 100, 2), "UpperCritical"),
    (Thresholds(80, 90, 90, 2), "UpperCritical"),
    (Thresholds(80, 90, 100, -0.5), "Hysteresis"),
    (Thresholds(80, 90, 100, 20.5), "Hysteresis"),
    (Thresholds(80, 90, 100, math.nan), "Hysteresis"),
    (Thresholds(20, 90, 100, 2), "UpperCaution"),
    (Thresholds(80, 90, 151, 2), "UpperFatal"),
    (Thresholds(80, math.inf, 100, 2), "UpperCritical"),
    (Thresholds(math.nan, 90, 100, 2), "UpperCaution"),
])
def test_thresholds_that_make_no_sense_are_refused_naming_the_field(
    thresholds: Thresholds, field: str
) -> None:
    with pytest.raises(InvalidRequest) as refused:
        thresholds.check()
    assert refused.value.attribute == field


def test_levels_rise_at_once_to_the_highest_threshold_reached() -> None:
    assert reached(79.99, DEFAULT_THRESHOLDS) is N
    assert reached(80.0, DEFAULT_THRESHOLDS) is CA
    assert reached(100.0, DEFAULT_THRESHOLDS) is F
    assert walk([50.0, 105.0]) == ["Normal", "Fatal"]
    assert walk([85.0, 92.0, 99.9, 100.0]) == ["Caution", "Critical", "Critical", "Fatal"]


def test_a_reading_hovering_at_a_threshold_does_not_flap() -> None:
    hovering = [90.0, 89.5, 90.1, 88.2, 90.0, 88.0, 89.9, 87.99, 89.0]
    assert walk(hovering) == ["Critical"] * 7 + ["Caution", "Caution"]
    no_hysteresis = Thresholds(80, 90, 100, 0.0)
    assert walk([90.0, 89.99, 90.0], no_hysteresis) == ["Critical", "Caution", "Critical"]


def test_levels_fall_one_threshold_at_a_time_each_with_its_hysteresis() -> None:
    assert walk([101.0, 98.5, 97.9, 60.0]) == ["Fatal", "Fatal", "Critical", "Normal"]
    assert next_level(78.5, DEFAULT_THRESHOLDS, F) is CA  # below 98 and 88, not below 78
    assert next_level(77.9, DEFAULT_THRESHOLDS, F) is N


def test_an_override_never_hides_a_fatal_model() -> None:
    # the admin drills a low reading while the model is past UpperFatal: the floor loses
    drill = Conditions(powered=True, load=1.0, cpu_floor=Floor(50.0))
    reading = drill.cpu_reading(101.5)
    assert reading == 101.5
    assert next_level(reading, DEFAULT_THRESHOLDS, N) is F
    # and an override above the model raises the level
    assert next_level(Conditions(True, 0.0, cpu_floor=Floor(100.0)).cpu_reading(35.0),
                      DEFAULT_THRESHOLDS, N) is F


def test_level_labels_and_health() -> None:
    assert [level.label for level in ThermalLevel] == ["Normal", "Caution", "Critical", "Fatal"]
    assert [level.health for level in ThermalLevel] == ["OK", "Warning", "Critical", "Critical"]
    assert ThermalLevel.of_label("Critical") is CR


def test_overrides_are_checked() -> None:
    hour = timedelta(hours=1)
    assert check_override("CPU", 95.5, hour) is Sensor.CPU
    assert check_override("Inlet", -40.0, timedelta(seconds=1)) is Sensor.INLET
    for sensor, value, lasting, field in [
        ("GPU", 90.0, hour, "Sensor"), ("cpu", 90.0, hour, "Sensor"),
        ("CPU", 150.5, hour, "Reading"), ("CPU", math.inf, hour, "Reading"),
        ("CPU", math.nan, hour, "Reading"), ("CPU", 90.0, timedelta(0), "DurationSeconds"),
        ("CPU", 90.0, MAX_OVERRIDE + timedelta(seconds=1), "DurationSeconds"),
    ]:
        with pytest.raises(InvalidRequest) as refused:
            check_override(sensor, value, lasting)
        assert refused.value.attribute == field, (sensor, value, lasting)


def test_a_record_keeps_one_override_per_sensor_until_it_expires() -> None:
    record = ThermalRecord("vm1", 35.0, T0)
    first = SensorOverride(Sensor.CPU, 95.0, T0 + timedelta(minutes=5), "admin:root")
    second = SensorOverride(Sensor.CPU, 92.0, T0 + timedelta(minutes=10), "admin:root")
    inlet = SensorOverride(Sensor.INLET, 40.0, T0 + timedelta(minutes=1), "admin:root")
    changed = record.with_override(first).with_override(inlet).with_override(second)
    assert changed.version == 4
    assert changed.overrides == (inlet, second)
    assert changed.override(Sensor.CPU, T0) == second
    assert changed.override(Sensor.INLET, T0 + timedelta(minutes=1)) is None  # expired
    assert changed.active_overrides(T0 + timedelta(minutes=2)) == (second,)
    assert changed.without_override(Sensor.CPU).overrides == (inlet,)
