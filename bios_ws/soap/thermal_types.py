"""The thermal contract's types, in Redfish's shapes: temperature sensors (``Reading`` in
degrees Celsius, ``ReadingUnits`` ``Cel``, ``Thresholds`` UpperCaution, UpperCritical and
UpperFatal each with its ``HysteresisReading``) and fans (``SpeedPercent``, ``SpeedRPM``).

Readings are ``xs:double`` (they have decimals); times are ISO 8601 UTC strings. A sensor
is named by a string (an unknown one is an ``InvalidRequest`` fault naming it).
"""

from __future__ import annotations

from spyne import ComplexModel, Double, Enum, Unicode

from bios_ws.domain.thermal_policy import ThermalLevel
from bios_ws.soap.types import TNS, optional, repeated, required

ThermalStateType = Enum(*(level.label for level in ThermalLevel),
                        type_name="ThermalState").customize(__namespace__=TNS)
HealthType = Enum("OK", "Warning", "Critical", type_name="Health").customize(
    __namespace__=TNS)
AmbientSourceType = Enum("HostSensors", "Default", type_name="AmbientSource").customize(
    __namespace__=TNS)


class ThermalThreshold(ComplexModel):  # type: ignore[misc]
    """A threshold's reading, and how far below it a reading must fall to clear it."""

    __namespace__ = TNS
    _type_info = [
        ("Reading", required(Double)),
        ("HysteresisReading", required(Double)),
    ]


class ThermalThresholds(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [
        ("UpperCaution", required(ThermalThreshold)),
        ("UpperCritical", required(ThermalThreshold)),
        ("UpperFatal", required(ThermalThreshold)),
    ]


class SensorOverride(ComplexModel):  # type: ignore[misc]
    """An admin's override in force: the sensor reads at least Reading until Expires."""

    __namespace__ = TNS
    _type_info = [
        ("Reading", required(Double)),
        ("Expires", required(Unicode)),
        ("SetBy", required(Unicode)),
    ]


class TemperatureSensor(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [
        ("Name", required(Unicode)),
        ("PhysicalContext", required(Unicode)),
        ("Reading", required(Double)),
        ("ReadingUnits", required(Unicode)),
        ("Thresholds", optional(ThermalThresholds)),
        ("Override", optional(SensorOverride)),
    ]


class TemperatureSensorList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("Sensor", repeated(TemperatureSensor))]


class Fan(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [
        ("Name", required(Unicode)),
        ("SpeedPercent", required(Double)),
        ("SpeedRPM", required(Double)),
    ]


class FanList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("Fan", repeated(Fan))]
