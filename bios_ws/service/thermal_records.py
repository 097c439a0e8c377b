"""What a thermal crossing leaves besides its audit entry: an entry in the domain's System
Event Log (``bios_ws.service.sel.record_thermal``) and a ``ThermalThresholdCrossed`` event
(``bios_ws.service.events``), written in the unit of work that records the crossing
(``bios_ws.service.thermal_alerts``), so they are stored once, with it."""

from __future__ import annotations

from bios_ws.domain.events import Severity
from bios_ws.domain.ports import UnitOfWork
from bios_ws.service.events import thermal_threshold_crossed
from bios_ws.service.sel import record_thermal
from bios_ws.service.thermal_alerts import ThermalAlert, ThermalAlerts


def record_crossing(uow: UnitOfWork, alert: ThermalAlert) -> None:
    """The SEL entry and the event of ``alert``: the threshold it reached going high, or the
    one it fell back below."""
    crossed = f"Upper{(alert.level if alert.rising else alert.previous).label}"
    record_thermal(uow, alert.domain_id, sensor=alert.sensor.value,
                   reading_celsius=alert.reading, threshold=crossed,
                   threshold_celsius=alert.threshold, going_high=alert.rising, at=alert.time)
    severity = Severity.CRITICAL if alert.rising else Severity.OK
    thermal_threshold_crossed(uow, alert.domain_id, alert.sensor.value, crossed,
                              alert.reading, alert.time, severity)


#: The alerts a serving vBIOS raises: each lands in the domain's System Event Log.
RECORDED_ALERTS = ThermalAlerts(critical=record_crossing, fatal=record_crossing,
                                cleared=record_crossing)
