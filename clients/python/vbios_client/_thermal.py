"""Thermal readings, the guest's call (a part of ``BiosClient``), and its answer turned into
``vbios_client.models.Thermal``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vbios_client._wire import items, utc_time
from vbios_client.models import Fan, TemperatureSensor, Thermal, ThermalThreshold

if TYPE_CHECKING:
    from vbios_client._channel import SoapChannel


class ThermalCalls:
    """The thermal operation of ``BiosClient``."""

    @property
    def _channel(self) -> SoapChannel:  # BiosClient's
        raise NotImplementedError

    def thermal(self) -> Thermal:
        """The domain's temperatures (CPU and inlet, in degrees Celsius with decimals, the
        CPU's thresholds), fans and thermal state, read now."""
        return thermal(self._channel.call("GetThermal"))


def thermal(wire: Any) -> Thermal:
    """GetThermal's (or GetDomainThermal's) answer."""
    return Thermal(
        state=str(wire.State), health=str(wire.Health), power_state=str(wire.PowerState),
        load_percent=float(wire.LoadPercent), power_watts=float(wire.PowerWatts),
        ambient_source=str(wire.AmbientSource), reading_time=utc_time(str(wire.ReadingTime)),
        temperatures=tuple(_sensor(s) for s in items(wire.Temperatures, "Sensor")),
        fans=tuple(Fan(str(f.Name), float(f.SpeedPercent), float(f.SpeedRPM))
                   for f in items(wire.Fans, "Fan")))


def _sensor(wire: Any) -> TemperatureSensor:
    limits = getattr(wire, "Thresholds", None)
    override = getattr(wire, "Override", None)
    return TemperatureSensor(
        name=str(wire.Name), physical_context=str(wire.PhysicalContext),
        reading=float(wire.Reading), units=str(wire.ReadingUnits),
        upper_caution=_threshold(limits, "UpperCaution"),
        upper_critical=_threshold(limits, "UpperCritical"),
        upper_fatal=_threshold(limits, "UpperFatal"),
        override_reading=None if override is None else float(override.Reading),
        override_expires=None if override is None else utc_time(str(override.Expires)),
        override_set_by=None if override is None else str(override.SetBy))


def _threshold(limits: Any, name: str) -> ThermalThreshold | None:
    one = None if limits is None else getattr(limits, name, None)
    if one is None:
        return None
    return ThermalThreshold(float(one.Reading), float(one.HysteresisReading))
