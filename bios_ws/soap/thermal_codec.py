"""The thermal answer for the response encoder, built from the use case's ``ThermalView``."""

from __future__ import annotations

from types import SimpleNamespace as Out
from typing import Any

from spyne import Double, Unicode

from bios_ws.domain.thermal_policy import PHYSICAL_CONTEXT, Thresholds
from bios_ws.service.thermal_sample import SensorView, ThermalView
from bios_ws.soap.attestation_codec import iso
from bios_ws.soap.power_types import PowerStateType
from bios_ws.soap.thermal_types import (
    AmbientSourceType,
    FanList,
    HealthType,
    TemperatureSensorList,
    ThermalStateType,
)
from bios_ws.soap.types import required

#: The answer of every thermal operation: its types, and its field names.
RETURNS = (required(ThermalStateType), required(HealthType), required(PowerStateType),
           required(Double), required(Double), required(AmbientSourceType),
           required(Unicode), required(TemperatureSensorList), required(FanList))
NAMES = ("State", "Health", "PowerState", "LoadPercent", "PowerWatts", "AmbientSource",
         "ReadingTime", "Temperatures", "Fans")


def thermal_out(view: ThermalView) -> tuple[Any, ...]:
    return (view.level.label, view.level.health, view.power_state.value,
            round(view.load * 100.0, 1), view.watts, view.ambient_source, iso(view.time),
            Out(Sensor=[_sensor(sensor) for sensor in view.sensors]),
            Out(Fan=[Out(Name=fan.name, SpeedPercent=fan.speed_percent, SpeedRPM=fan.rpm)
                     for fan in view.fans]))


def _sensor(view: SensorView) -> Any:
    override = view.override
    return Out(
        Name=view.sensor.value, PhysicalContext=PHYSICAL_CONTEXT[view.sensor],
        Reading=view.reading, ReadingUnits="Cel",
        Thresholds=None if view.thresholds is None else _thresholds(view.thresholds),
        Override=None if override is None else Out(
            Reading=override.value, Expires=iso(override.expires_at), SetBy=override.set_by))


def _thresholds(thresholds: Thresholds) -> Any:
    def one(reading: float) -> Any:
        return Out(Reading=reading, HysteresisReading=thresholds.hysteresis)

    return Out(UpperCaution=one(thresholds.caution), UpperCritical=one(thresholds.critical),
               UpperFatal=one(thresholds.fatal))
