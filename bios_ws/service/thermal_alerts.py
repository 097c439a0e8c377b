"""What the thermal policy raises when a domain's CPU sensor crosses a threshold: the port
the integrator wires to the event and system event log (SEL) stores.

The policy itself audits every crossing (``ThermalCrossing``, any level, either way) and
logs it; ``ThermalAlerts`` adds what a BMC raises besides: ``critical`` when the reading
reaches UpperCritical from below, ``fatal`` when it reaches UpperFatal (the domain is shut
down right after), ``cleared`` when it falls back below UpperCritical by the hysteresis.

Each hook is called inside the unit of work that records the crossing, after its
compare-and-set won: whatever it writes through that unit (an event, a SEL entry) is
stored once and only with the crossing, however many processes evaluate the policy. A
hook must not commit, and must not call out of the process (the unit holds the store's
write lock). The defaults write nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bios_ws.domain.ports import UnitOfWork
from bios_ws.domain.thermal_policy import Sensor, ThermalLevel


@dataclass(frozen=True)
class ThermalAlert:
    """One crossing of a threshold by a domain's sensor."""

    domain_id: str
    sensor: Sensor
    #: The reading that crossed [degC], and whether an admin's override made it.
    reading: float
    overridden: bool
    previous: ThermalLevel
    level: ThermalLevel
    #: The threshold crossed: the new level's going up, the left level's going down [degC].
    threshold: float
    time: datetime

    @property
    def rising(self) -> bool:
        return self.level > self.previous

    @property
    def message(self) -> str:
        """One line, as a log or an event's message says it."""
        drill = " (override)" if self.overridden else ""
        if self.rising:
            return (f"{self.sensor.value} temperature {self.reading:.1f} degC{drill} reached"
                    f" {_threshold_name(self.level)} {self.threshold:g} degC"
                    f" ({self.level.label})")
        return (f"{self.sensor.value} temperature {self.reading:.1f} degC{drill} is back below"
                f" {_threshold_name(self.previous)} {self.threshold:g} degC"
                f" ({self.level.label})")


def _threshold_name(level: ThermalLevel) -> str:
    return f"Upper{level.label}"


#: A hook: the unit of work recording the crossing, and the crossing.
AlertHook = Callable[[UnitOfWork, ThermalAlert], None]


def _nothing(uow: UnitOfWork, alert: ThermalAlert) -> None:
    return None


@dataclass(frozen=True)
class ThermalAlerts:
    critical: AlertHook = _nothing
    fatal: AlertHook = _nothing
    cleared: AlertHook = _nothing

    def hook_for(self, alert: ThermalAlert) -> AlertHook | None:
        """The hook a crossing calls, if any (a caution crossing has none)."""
        if alert.rising and alert.level is ThermalLevel.FATAL:
            return self.fatal
        if alert.rising and alert.level is ThermalLevel.CRITICAL:
            return self.critical
        if not alert.rising and alert.previous >= ThermalLevel.CRITICAL > alert.level:
            return self.cleared
        return None


NO_ALERTS = ThermalAlerts()
