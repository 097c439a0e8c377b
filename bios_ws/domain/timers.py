"""A domain's two timers: the RTC wake alarm and the OS watchdog.

**Wake alarm.** An absolute UTC time at which the service powers the domain on (its
LastResetCause then ``RTCWakeup``), as a real RTC alarm wakes a machine from soft-off.
``check_wake_time`` refuses a time without a UTC offset, one in the past and one more
than ``MAX_WAKE_AHEAD`` ahead. One alarm per domain: a new one replaces it. An alarm is
consumed when it comes due, whatever the domain's state then (a domain already on
stays as it is).

**Watchdog.** The OS watchdog (``OsWatchdogTimer``): once armed with a timeout, the guest
must pet it at least every ``timeout_seconds``; when it does not, the service resets the
domain (ForceRestart, LastResetCause ``Watchdog``). The countdown runs only while the
machine runs and starts again at every boot (a boot is as good as a pet: the firmware
arms the watchdog anew), so ``deadline`` is ``timeout`` after the later of the last pet
and the machine's last reset. After a bite the countdown starts again at the reset: a
guest that never pets is reset once per timeout, as with a BIOS that arms the watchdog
at every boot.

Both are kept with a version: whoever fires one first claims it with a compare-and-set
on that version, so that two serving workers never both fire it (``claimed``).
Standard library only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bios_ws.errors import InvalidRequest

#: How far ahead a wake alarm may be set.
MAX_WAKE_AHEAD = timedelta(days=366)
MIN_WATCHDOG_SECONDS = 5
MAX_WATCHDOG_SECONDS = 86_400
DEFAULT_WATCHDOG_SECONDS = 300
#: What a watchdog that bites does (Redfish ``ResetType``).
WATCHDOG_ACTION = "ForceRestart"
#: The registry attribute that shows whether the watchdog is armed.
WATCHDOG_ATTRIBUTE = "OsWatchdogTimer"


@dataclass(frozen=True)
class WakeAlarm:
    domain_id: str
    wake_at: datetime
    set_by: str
    set_at: datetime
    version: int = 1


@dataclass(frozen=True)
class Watchdog:
    """A domain's watchdog. ``last_pet`` is when it was armed or last petted."""

    domain_id: str
    enabled: bool
    timeout_seconds: int
    last_pet: datetime
    set_by: str
    version: int = 1
    #: How many times it bit.
    expirations: int = 0

    def deadline(self, last_reset: datetime | None) -> datetime:
        """When it bites if the guest does not pet it again (see the module docstring)."""
        start = self.last_pet if last_reset is None else max(self.last_pet, last_reset)
        return start + timedelta(seconds=self.timeout_seconds)

    def due(self, now: datetime, running: bool, last_reset: datetime | None) -> bool:
        """Whether it bites now: armed, the machine running, and its deadline passed."""
        return self.enabled and running and self.deadline(last_reset) <= now

    def petted(self, at: datetime) -> Watchdog:
        return dataclasses.replace(self, last_pet=at, version=self.version + 1)

    def bitten(self, at: datetime) -> Watchdog:
        """This watchdog once it bit at ``at`` (its countdown starts again there)."""
        return dataclasses.replace(self, last_pet=at, version=self.version + 1,
                                   expirations=self.expirations + 1)


def check_wake_time(wake_at: datetime, now: datetime) -> datetime:
    """``wake_at`` in UTC, or InvalidRequest: it must name its offset, lie in the future
    and at most ``MAX_WAKE_AHEAD`` ahead."""
    if wake_at.tzinfo is None or wake_at.utcoffset() is None:
        raise InvalidRequest("a wake time is an absolute UTC time: give its offset"
                             " (2027-01-31T06:30:00Z)", attribute="WakeTime")
    if wake_at <= now:
        raise InvalidRequest(f"the wake time {iso(wake_at)} is not in the future (it is"
                             f" {iso(now)})", attribute="WakeTime")
    if wake_at - now > MAX_WAKE_AHEAD:
        raise InvalidRequest(f"the wake time {iso(wake_at)} is more than"
                             f" {MAX_WAKE_AHEAD.days} days ahead", attribute="WakeTime")
    return wake_at.astimezone(UTC)


def parse_wake_time(text: str) -> datetime:
    """An ISO 8601 time with its offset (``Z`` or ``+00:00``...); InvalidRequest if not."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidRequest(f"not an ISO 8601 time: {text[:64]!r}",
                             attribute="WakeTime") from None
    if parsed.tzinfo is None:
        raise InvalidRequest("a wake time is an absolute UTC time: give its offset"
                             " (2027-01-31T06:30:00Z)", attribute="WakeTime")
    return parsed


def check_timeout(seconds: int) -> int:
    """InvalidRequest unless ``seconds`` is a watchdog timeout the service takes."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not (
            MIN_WATCHDOG_SECONDS <= seconds <= MAX_WATCHDOG_SECONDS):
        raise InvalidRequest(f"a watchdog timeout is {MIN_WATCHDOG_SECONDS} to"
                             f" {MAX_WATCHDOG_SECONDS} seconds, not {seconds!r}",
                             attribute="TimeoutSeconds")
    return seconds


def iso(moment: datetime) -> str:
    """RFC 3339 UTC with ``Z``, to the second."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
