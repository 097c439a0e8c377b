"""Thermal operations: a guest's own readings (GetThermal), and the admin's, naming a domain
(GetDomainThermal, SetThermalThresholds, OverrideSensor). Every one answers with the
domain's readings as they are after it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from spyne import Double, Integer32, Service, Unicode

from bios_ws.service.thermal import ThermalService
from bios_ws.soap.context import call_of
from bios_ws.soap.settings_service import SERVICE_NAME
from bios_ws.soap.thermal_codec import NAMES, RETURNS, thermal_out
from bios_ws.soap.types import operation, optional, required


class ThermalSoapService(Service):  # type: ignore[misc]
    __service_name__ = SERVICE_NAME

    @operation(returns=RETURNS, names=NAMES)
    def GetThermal(ctx: Any) -> tuple[Any, ...]:
        call = call_of(ctx)
        return thermal_out(call.use(ThermalService).thermal(call.principal))

    @operation(required(Unicode), returns=RETURNS, names=NAMES)
    def GetDomainThermal(ctx: Any, Domain: str) -> tuple[Any, ...]:
        call = call_of(ctx)
        return thermal_out(call.use(ThermalService).thermal(call.principal, str(Domain)))

    @operation(required(Unicode), required(Double), required(Double), required(Double),
               optional(Double), returns=RETURNS, names=NAMES)
    def SetThermalThresholds(ctx: Any, Domain: str, UpperCaution: float, UpperCritical: float,
                             UpperFatal: float, Hysteresis: float | None) -> tuple[Any, ...]:
        call = call_of(ctx)
        view = call.use(ThermalService).set_thresholds(
            call.principal, str(Domain), float(UpperCaution), float(UpperCritical),
            float(UpperFatal), None if Hysteresis is None else float(Hysteresis))
        return thermal_out(view)

    @operation(required(Unicode), required(Unicode), optional(Double), optional(Integer32),
               returns=RETURNS, names=NAMES)
    def OverrideSensor(ctx: Any, Domain: str, Sensor: str, Reading: float | None,
                       DurationSeconds: int | None) -> tuple[Any, ...]:
        call = call_of(ctx)
        view = call.use(ThermalService).override(
            call.principal, str(Domain), str(Sensor),
            None if Reading is None else float(Reading),
            None if DurationSeconds is None else timedelta(seconds=int(DurationSeconds)))
        return thermal_out(view)
