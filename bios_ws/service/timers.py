"""Who fires the timers: every serving worker looks once a second (``tick``); a timer that
came due is claimed in the store by compare-and-set on its version before anything is
done, so that of all the workers exactly one fires it, and at most once.

- A wake alarm that came due is removed (the claim), then the domain is powered on as
  the platform with LastResetCause ``RTCWakeup``; the domain's event log says what the
  alarm did (powered on, already on, or why not). An alarm that came due while the
  service was down fires when it starts (``at_start``).
- A watchdog that bit is moved on (the claim: its countdown starts again now, and the
  domain's event log gets its ``WatchdogExpired`` entry in the same unit), then the
  domain is reset (ForceRestart, LastResetCause ``Watchdog``). A watchdog whose
  ``OsWatchdogTimer`` attribute was set Disabled through the settings is disarmed. The
  countdowns do not run while the service is down: ``at_start`` restarts them.

Claiming first makes the firing at most once: a worker killed between its claim and the
power request leaves the alarm consumed (never two power-ons for one alarm).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from bios_ws.domain.ports import Clock, UnitOfWorkFactory
from bios_ws.domain.power import PowerState, ResetCause, ResetType
from bios_ws.domain.timers import (
    WATCHDOG_ACTION,
    WATCHDOG_ATTRIBUTE,
    WakeAlarm,
    Watchdog,
    iso,
)
from bios_ws.errors import InvalidPowerTransition, VbiosError
from bios_ws.service.power import PowerService
from bios_ws.service.sel import record_wake, record_watchdog

log = logging.getLogger("bios_ws.timers")

#: How often a serving worker looks for timers that came due (seconds).
TIMER_INTERVAL = 1.0
#: The machine states a watchdog counts down in.
COUNTING = frozenset({PowerState.ON, PowerState.POWERING_ON})


#: Whether a domain's ``OsWatchdogTimer`` is Disabled where its settings are; None: read
#: it in the store (``service.watchdog_setting``).
SettingDisabled = Callable[[str], "bool | None"]


class SystemTimers:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, power: PowerService, *,
                 disabled: SettingDisabled | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self._power = power
        self._disabled = disabled

    def tick(self) -> list[str]:
        """Fire what came due (see the module docstring); lines saying what was done."""
        now = self._clock()
        with self._uow() as uow:
            alarms = uow.timers.due_alarms(now)
            watchdogs = uow.timers.armed_watchdogs()
        here = self._power.here([a.domain_id for a in alarms] + [w.domain_id for w in watchdogs])
        alarms = [alarm for alarm in alarms if alarm.domain_id in here]
        watchdogs = [watchdog for watchdog in watchdogs if watchdog.domain_id in here]
        done = [line for alarm in alarms if (line := self._wake(alarm))]
        return done + [line for watchdog in watchdogs if (line := self._watch(watchdog))]

    def at_start(self) -> list[str]:
        """At service start: every armed watchdog's countdown starts again (the guest could
        not pet it while the service was down), then alarms that came due fire."""
        now = self._clock()
        said = []
        with self._uow() as uow:
            armed = uow.timers.armed_watchdogs()
        here = self._power.here(watchdog.domain_id for watchdog in armed)
        for watchdog in (watchdog for watchdog in armed if watchdog.domain_id in here):
            with self._uow() as uow:
                if uow.timers.save_watchdog(watchdog.petted(now), watchdog.version):
                    uow.commit()
                    said.append(f"{watchdog.domain_id}: watchdog countdown restarted"
                                f" ({watchdog.timeout_seconds} s)")
        return said + self.tick()

    # -- wake alarms ---------------------------------------------------------------------

    def _wake(self, alarm: WakeAlarm) -> str:
        domain_id = alarm.domain_id
        with self._uow() as uow:
            claimed = uow.timers.remove_alarm(domain_id, expected_version=alarm.version)
            uow.commit()
        if not claimed:
            return ""  # another worker fired it, or the guest changed it meanwhile
        ok = True
        try:
            outcome = self._power.platform_request(domain_id, ResetType.ON,
                                                   ResetCause.RTC_WAKEUP, "WakeAlarm")
            what = f"powered on (the domain is {outcome.state.value})"
        except InvalidPowerTransition as exc:  # not off: the alarm has nothing to wake
            what = f"the domain was not off ({exc.attribute})"
        except VbiosError as exc:
            ok, what = False, f"not powered on: {exc.message}"
        try:
            with self._uow() as uow:
                record_wake(uow, domain_id, iso(alarm.wake_at), what, ok, self._clock())
                uow.commit()
        except VbiosError as exc:  # the domain was deleted meanwhile, the store went away
            log.warning("wake alarm of %s: %s (not logged: %s)", domain_id, what, exc)
        return f"{domain_id}: wake alarm of {iso(alarm.wake_at)}: {what}"

    # -- watchdogs -----------------------------------------------------------------------

    def _watch(self, watchdog: Watchdog) -> str:
        domain_id = watchdog.domain_id
        now = self._clock()
        try:
            disabled = None if self._disabled is None else self._disabled(domain_id)
            with self._uow() as uow:
                record = uow.machines.get(domain_id)
                if disabled is None:
                    # None when the registry in force has no OsWatchdogTimer (a registry
                    # applied without it removed it from every domain's values)
                    setting = uow.domains.get(domain_id).current.get(WATCHDOG_ATTRIBUTE)
                    disabled = setting == "Disabled"
        except VbiosError:
            return ""  # the domain is being deleted (or its remote gone, and none seen)
        if disabled:
            return self._disarm(watchdog)
        if not watchdog.due(now, record.state in COUNTING, record.last_reset_time):
            return ""
        with self._uow() as uow:
            if not uow.timers.save_watchdog(watchdog.bitten(now), watchdog.version):
                return ""  # another worker claimed it, or the guest petted it meanwhile
            record_watchdog(uow, domain_id, watchdog.timeout_seconds, WATCHDOG_ACTION, now)
            uow.commit()
        try:
            self._power.platform_request(domain_id, ResetType(WATCHDOG_ACTION),
                                         ResetCause.WATCHDOG, "WatchdogExpired")
        except VbiosError as exc:
            log.warning("watchdog of %s bit but the reset was refused: %s", domain_id, exc)
            return f"{domain_id}: watchdog bit; the reset was refused: {exc.message}"
        return f"{domain_id}: watchdog bit after {watchdog.timeout_seconds} s: reset"

    def _disarm(self, watchdog: Watchdog) -> str:
        disarmed = dataclasses.replace(watchdog, enabled=False, version=watchdog.version + 1)
        with self._uow() as uow:
            if not uow.timers.save_watchdog(disarmed, watchdog.version):
                return ""
            uow.commit()
        return f"{watchdog.domain_id}: watchdog disarmed ({WATCHDOG_ATTRIBUTE} is Disabled)"
