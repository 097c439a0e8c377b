"""Where a domain's settings for a boot of its machine come from.

A machine boots on the host that runs it (``docs/routing.md``: machines stay where they
run), but the domain's settings may live elsewhere: with the "settings" capability
routed to a remote, the remote holds them (current and pending values, boot order,
BootNext, Secure Boot). ``BootSettings`` is what the machine's hooks and the power use
case ask, whichever side holds them: this installation's store
(``service.boot_settings.LocalBootSettings``) or the remote, over the host protocol
(``server.remote_boot.RemoteBootSettings``). ``service.boot_settings.RoutedBootSettings``
chooses per call from the routing table in force.

A remote that cannot be reached raises ``RemoteUnavailable``: the caller boots with
what it has; it never takes this installation's state for the remote's.

Standard library only.
"""

from __future__ import annotations

from typing import Protocol

from bios_ws.domain.power import ResetCause
from bios_ws.domain.state import DomainState

#: The capability whose route says where a domain's settings live
#: (``bios_ws.capabilities``; Secure Boot routes with it).
SETTINGS = "settings"


class BootSettings(Protocol):
    def at_boot(self, domain_id: str, cause: ResetCause, *,
                consume_boot_next: bool) -> DomainState:
        """What a boot of the domain's machine does to its settings: pending values
        become current (kept pending in restricted mode), and BootNext is consumed too
        for a machine without firmware of its own (``consume_boot_next``). The whole
        state after it, for the plan of the boot."""

    def state_of(self, domain_id: str) -> DomainState:
        """The domain's whole settings state, as it is."""

    def boot_next_consumed(self, domain_id: str, option_id: str) -> None:
        """The firmware used BootNext ``option_id`` (read back after a run): it is gone,
        unless a new one was set meanwhile."""

    def mirror_watchdog(self, domain_id: str, enabled: bool) -> bool:
        """The domain's watchdog is being armed (``enabled``) or disarmed: where a remote
        holds its settings, ``OsWatchdogTimer`` is set there to match, as its platform
        (RemoteUnavailable when it cannot be), and True. False where they are here: the
        system management use case sets it in the unit that arms the watchdog."""

    def setting(self, domain_id: str, name: str) -> object:
        """The current value of one attribute, for the machine's own rules (its thermal
        model reads PowerProfile and ThermalProfile); None when there is none. Never
        raises for a remote that cannot be reached: the last value seen, else None."""


def pending_at_boot(state: DomainState) -> bool:
    """Whether the next boot has something to apply (values or a BootNext)."""
    return bool(state.pending) or state.boot_next is not None
