"""System management, the guest's calls (a part of ``BiosClient``): the domain's SMBIOS
tables, its System Event Log, its wake alarm and its OS watchdog.

A watchdog daemon arms the watchdog once (``set_watchdog(True, timeout_seconds=60)``) and
then pets it well within the timeout (``pet_watchdog()``); a guest that stops petting is
reset by the vBIOS (ForceRestart, LastResetCause ``Watchdog``). A boot restarts the
countdown. ``set_wake_alarm`` takes an aware datetime: the vBIOS powers the domain on
then (LastResetCause ``RTCWakeup``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from vbios_client import _system_wire as wire
from vbios_client.models import SystemEventLog, WakeAlarm, Watchdog

if TYPE_CHECKING:
    from vbios_client._channel import SoapChannel
    from vbios_client.models import Smbios

_UTC = timezone.utc  # noqa: UP017 - the client distribution still supports Python 3.10


class SystemManagementCalls:
    """The system-management operations of ``BiosClient``."""

    @property
    def _channel(self) -> SoapChannel:  # BiosClient's
        raise NotImplementedError

    def get_smbios(self) -> Smbios:
        """The SMBIOS tables (types 0 to 3) the domain's firmware shows its OS."""
        return wire.smbios(self._channel.call("GetSmbios"))

    def get_system_event_log(self) -> SystemEventLog:
        """The domain's System Event Log, oldest entry first."""
        return wire.event_log(self._channel.call("GetSystemEventLog"))

    def clear_system_event_log(self) -> int:
        """Empty the log (it then holds one "Log cleared" entry); how many entries went."""
        return int(self._channel.call("ClearSystemEventLog"))

    def get_wake_alarm(self) -> WakeAlarm | None:
        """The domain's wake alarm, or None."""
        return wire.wake_alarm(self._channel.call("GetWakeAlarm"))

    def set_wake_alarm(self, wake_time: datetime) -> WakeAlarm:
        """Power the domain on at ``wake_time`` (aware; in the future, at most a year
        ahead), replacing any alarm it had."""
        if not isinstance(wake_time, datetime):
            raise TypeError("wake_time must be a datetime")
        if wake_time.tzinfo is None or wake_time.utcoffset() is None:
            raise ValueError("wake_time must be aware (an absolute time): give its tzinfo")
        text = wake_time.astimezone(_UTC).isoformat().replace("+00:00", "Z")
        return _alarm(wire.wake_alarm(self._channel.call("SetWakeAlarm", WakeTime=text)))

    def clear_wake_alarm(self) -> bool:
        """Remove the wake alarm; whether there was one."""
        return bool(self._channel.call("ClearWakeAlarm"))

    def get_watchdog(self) -> Watchdog:
        return wire.watchdog(self._channel.call("GetWatchdog"))

    def set_watchdog(self, enabled: bool, timeout_seconds: int | None = None) -> Watchdog:
        """Arm the watchdog (its countdown starts now; ``timeout_seconds``: 5 to 86400,
        default the one it had, else 300) or disarm it."""
        if not isinstance(enabled, bool):
            raise TypeError("enabled must be a bool")
        params: dict[str, Any] = {"Enabled": enabled}
        if timeout_seconds is not None:
            if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, int):
                raise TypeError("timeout_seconds must be an int")
            params["TimeoutSeconds"] = timeout_seconds
        return wire.watchdog(self._channel.call("SetWatchdog", **params))

    def pet_watchdog(self) -> Watchdog:
        """Start the countdown again (WatchdogNotArmed while it is not armed)."""
        return wire.watchdog(self._channel.call("PetWatchdog"))


def _alarm(alarm: WakeAlarm | None) -> WakeAlarm:
    if alarm is None:
        from vbios_client.exceptions import TransportError

        raise TransportError("SetWakeAlarm answered without the alarm")
    return alarm
