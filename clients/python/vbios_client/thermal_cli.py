"""`vbios-client thermal [--json]`: this guest's temperatures, fans and thermal state.

The text shows the state (Normal, Caution, Critical or Fatal, with Redfish's health), the
power and CPU load, where the ambient comes from, then one line per temperature sensor
(its reading in degrees Celsius, its thresholds, an override in force) and per fan.
``--json`` prints the same as one object; times are RFC 3339, UTC.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from vbios_client._cli_text import dump, utc_text
from vbios_client.models import TemperatureSensor, Thermal, ThermalThreshold

if TYPE_CHECKING:
    from vbios_client.cli import Context

EXIT_OK = 0


def register(areas: argparse._SubParsersAction[argparse.ArgumentParser],
             leaf: Sequence[argparse.ArgumentParser]) -> None:
    text = "temperatures, fans and thermal state of this domain"
    areas.add_parser("thermal", parents=list(leaf), help=text, description=text,
                     allow_abbrev=False).set_defaults(run=_thermal)


def _thermal(ctx: Context) -> int:
    show(ctx.out, ctx.client.thermal(), as_json=ctx.as_json)
    return EXIT_OK


def show(out: TextIO, thermal: Thermal, *, as_json: bool) -> None:
    if as_json:
        dump(out, as_dict(thermal))
        return
    out.write(f"state    {thermal.state} (health {thermal.health})\n"
              f"power    {thermal.power_state}, CPU load {thermal.load_percent:g} %,"
              f" {thermal.power_watts:g} W\n"
              f"ambient  {thermal.ambient_source}\n"
              f"read at  {utc_text(thermal.reading_time)}\n\n")
    out.write(f"{'SENSOR':<8} {'READING':>10} {'CAUTION':>8} {'CRITICAL':>8} {'FATAL':>8}"
              "  OVERRIDE\n")
    for sensor in thermal.temperatures:
        limits = [_limit(t) for t in (sensor.upper_caution, sensor.upper_critical,
                                      sensor.upper_fatal)]
        out.write(f"{sensor.name:<8} {sensor.reading:>6.2f} {_unit(sensor):<3}"
                  f" {limits[0]:>8} {limits[1]:>8} {limits[2]:>8}  {_override(sensor)}\n")
    out.write(f"\n{'FAN':<8} {'SPEED':>7} {'RPM':>7}\n")
    for fan in thermal.fans:
        out.write(f"{fan.name:<8} {fan.speed_percent:>5.1f} % {fan.speed_rpm:>7.0f}\n")


def as_dict(thermal: Thermal) -> dict[str, Any]:
    return {
        "state": thermal.state, "health": thermal.health, "power_state": thermal.power_state,
        "load_percent": thermal.load_percent, "power_watts": thermal.power_watts,
        "ambient_source": thermal.ambient_source,
        "reading_time": utc_text(thermal.reading_time),
        "temperatures": [_sensor_dict(sensor) for sensor in thermal.temperatures],
        "fans": [{"name": fan.name, "speed_percent": fan.speed_percent,
                  "speed_rpm": fan.speed_rpm} for fan in thermal.fans],
    }


def _sensor_dict(sensor: TemperatureSensor) -> dict[str, Any]:
    thresholds = None
    if sensor.upper_caution or sensor.upper_critical or sensor.upper_fatal:
        thresholds = {name: None if t is None else {"reading": t.reading,
                                                    "hysteresis": t.hysteresis}
                      for name, t in (("upper_caution", sensor.upper_caution),
                                      ("upper_critical", sensor.upper_critical),
                                      ("upper_fatal", sensor.upper_fatal))}
    override = None
    if sensor.override_reading is not None:
        override = {"reading": sensor.override_reading, "set_by": sensor.override_set_by,
                    "expires": None if sensor.override_expires is None
                    else utc_text(sensor.override_expires)}
    return {"name": sensor.name, "physical_context": sensor.physical_context,
            "reading": sensor.reading, "units": sensor.units, "thresholds": thresholds,
            "override": override}


def _unit(sensor: TemperatureSensor) -> str:
    return "C" if sensor.units == "Cel" else sensor.units


def _limit(threshold: ThermalThreshold | None) -> str:
    return "-" if threshold is None else f"{threshold.reading:g}"


def _override(sensor: TemperatureSensor) -> str:
    if sensor.override_reading is None:
        return "-"
    until = "" if sensor.override_expires is None else \
        f" until {utc_text(sensor.override_expires)}"
    return f"{sensor.override_reading:g}{until} ({sensor.override_set_by or '?'})"
