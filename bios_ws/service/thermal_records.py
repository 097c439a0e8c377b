"""What a thermal crossing leaves besides its audit entry: an entry in the domain's System
Event Log (``bios_ws.service.sel.record_thermal``), written in the unit of work that records
the crossing (``bios_ws.service.thermal_alerts``), so it is stored once, with it."""

from __future__ import annotations

from bios_ws.domain.ports import UnitOfWork
from bios_ws.service.sel import record_thermal
from bios_ws.service.thermal_alerts import ThermalAlert, ThermalAlerts


def record_crossing(uow: UnitOfWork, alert: ThermalAlert) -> None:
    """The SEL entry of ``alert``: the threshold it reached going high, or the one it fell
    back below."""
    crossed = alert.level if alert.rising else alert.previous
    record_thermal(uow, alert.domain_id, sensor=alert.sensor.value,
                   reading_celsius=alert.reading, threshold=f"Upper{crossed.label}",
                   threshold_celsius=alert.threshold, going_high=alert.rising, at=alert.time)


#: The alerts a serving vBIOS raises: each lands in the domain's System Event Log.
RECORDED_ALERTS = ThermalAlerts(critical=record_crossing, fatal=record_crossing,
                                cleared=record_crossing)
