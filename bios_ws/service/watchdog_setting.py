"""Where a domain's ``OsWatchdogTimer`` is, for its watchdog (``service.system_management``,
``service.timers``): the setting follows the watchdog (``SetWatchdog`` sets it), and a
watchdog whose setting is ``Disabled`` is not armed (a pet is refused, the timers disarm
it).

For a domain whose settings are this installation's, the system management use case
reads and sets it in its own unit of work, as before (``WatchdogSetting`` answers None /
False). For a domain whose settings a remote holds (``docs/routing.md``, "Machines of
routed domains"), the remote's value is the one: ``SetWatchdog`` sets it there first
(``BootSettings.mirror_watchdog``: the host protocol's ``watchdog-setting``, as the
domain's platform; the remote unavailable: ``RemoteUnavailable``, and the watchdog is
left as it was), and a pet or a timer reads it through ``BootSettings.setting`` (a view
of the remote's values at most ``REMOTE_VALUES_TTL`` seconds old). A ``Disabled`` seen
there is read again before it counts: the view may predate a ``SetWatchdog`` that
enabled it in another worker. Each call here is made before its caller's unit of work
begins (none holds the store while it waits for a remote).
"""

from __future__ import annotations

from bios_ws.domain.boot_settings import BootSettings
from bios_ws.domain.timers import WATCHDOG_ATTRIBUTE
from bios_ws.errors import RemoteUnavailable, StoreUnavailable

DISABLED = "Disabled"


class WatchdogSetting:
    """``OsWatchdogTimer`` through ``settings`` (None: every domain's is in the store)."""

    def __init__(self, settings: BootSettings | None = None) -> None:
        self._settings = settings

    def mirror(self, domain_id: str, enabled: bool) -> bool:
        """True: the domain's settings are a remote's, which now holds the setting as
        ``enabled`` says. False: they are here, and the caller sets it in its unit."""
        return self._settings is not None and self._settings.mirror_watchdog(domain_id,
                                                                             enabled)

    def disabled(self, domain_id: str) -> bool | None:
        """Whether the setting is ``Disabled``; None without a settings port (the caller
        reads its store)."""
        if self._settings is None:
            return None
        if self._settings.setting(domain_id, WATCHDOG_ATTRIBUTE) != DISABLED:
            return False
        try:  # confirmed by a fresh read (one more only when it says Disabled)
            current = self._settings.state_of(domain_id).current
        except (RemoteUnavailable, StoreUnavailable):
            return True  # the last value seen
        return current.get(WATCHDOG_ATTRIBUTE) == DISABLED
