"""The settings a boot of a domain's machine uses (``domain.boot_settings``): from this
installation's store, or from the remote the domain's "settings" route names.

``LocalBootSettings`` is the settings use case itself (``BiosService``: the platform
applies pending values at boot, audited as ``admin:platform``). ``RoutedBootSettings``
reads the routing table in force on every call (``service.routing.RouteKeeper``: one
primary-key read while it has not moved) and asks the domain's remote when its settings
are routed: the remote applies them and answers its state (``docs/routing.md``,
"Machines of routed domains"). A route naming a remote the store does not hold is
``RemoteUnavailable``, never this installation's state.
"""

from __future__ import annotations

from collections.abc import Callable

from bios_ws.domain.boot_settings import SETTINGS, BootSettings
from bios_ws.domain.power import ResetCause
from bios_ws.domain.routing import Remote, RoutingTable
from bios_ws.domain.state import DomainState
from bios_ws.errors import RemoteUnavailable
from bios_ws.service.bios import BiosService


class LocalBootSettings:
    """The domain's settings in this installation's store."""

    def __init__(self, bios: BiosService) -> None:
        self._bios = bios

    def at_boot(self, domain_id: str, cause: ResetCause, *,
                consume_boot_next: bool) -> DomainState:
        self._bios.apply_at_boot(domain_id, f"boot ({cause.value})",
                                 consume_boot_next=consume_boot_next)
        return self._bios.state_of(domain_id)

    def state_of(self, domain_id: str) -> DomainState:
        return self._bios.state_of(domain_id)

    def boot_next_consumed(self, domain_id: str, option_id: str) -> None:
        self._bios.firmware_consumed_boot_next(domain_id, option_id)


#: The settings a remote holds, through this host's credential there.
RemoteSettings = Callable[[Remote], BootSettings]


class RoutedBootSettings:
    """Per call: the remote's settings when the domain's settings are routed, else the
    local ones."""

    def __init__(self, local: BootSettings, table: Callable[[], RoutingTable],
                 remote: RemoteSettings) -> None:
        self._local = local
        self._table = table
        self._remote = remote

    def source(self, domain_id: str) -> BootSettings:
        """Where ``domain_id``'s settings are now (RemoteUnavailable: a route to a remote
        the store does not hold)."""
        table = self._table()
        target = table.target_for(SETTINGS, domain_id)
        if target is None:
            return self._local
        remote = table.remotes.get(target)
        if remote is None:
            raise RemoteUnavailable(f"remote {target} is unavailable")
        return self._remote(remote)

    def at_boot(self, domain_id: str, cause: ResetCause, *,
                consume_boot_next: bool) -> DomainState:
        return self.source(domain_id).at_boot(domain_id, cause,
                                              consume_boot_next=consume_boot_next)

    def state_of(self, domain_id: str) -> DomainState:
        return self.source(domain_id).state_of(domain_id)

    def boot_next_consumed(self, domain_id: str, option_id: str) -> None:
        self.source(domain_id).boot_next_consumed(domain_id, option_id)
