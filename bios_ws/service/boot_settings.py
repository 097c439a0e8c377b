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

import threading
import time
from collections.abc import Callable, Mapping

from bios_ws.domain.boot_settings import SETTINGS, BootSettings
from bios_ws.domain.power import ResetCause
from bios_ws.domain.routing import Remote, RoutingTable
from bios_ws.domain.state import DomainState
from bios_ws.errors import RemoteUnavailable, StoreUnavailable
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

    def mirror_watchdog(self, domain_id: str, enabled: bool) -> bool:
        return False

    def setting(self, domain_id: str, name: str) -> object:
        return self._bios.setting(domain_id, name)


#: The settings a remote holds, through this host's credential there.
RemoteSettings = Callable[[Remote], BootSettings]
#: Seconds a routed domain's current values read from its remote serve ``setting``: the
#: thermal model reads two of them at every sample of every running machine (every 5 s
#: by the policy, and at each guest's GetThermal), which must not cost a hop each.
REMOTE_VALUES_TTL = 5.0


class RoutedBootSettings:
    """Per call: the remote's settings when the domain's settings are routed, else the
    local ones."""

    def __init__(self, local: BootSettings, table: Callable[[], RoutingTable],
                 remote: RemoteSettings, *, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self._local = local
        self._table = table
        self._remote = remote
        self._clock = clock
        self._seen: dict[str, tuple[float, Mapping[str, object]]] = {}
        self._lock = threading.Lock()

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
        source = self.source(domain_id)
        state = source.state_of(domain_id)
        if source is not self._local:  # the freshest view ``setting`` may serve
            self._saw(domain_id, state)
        return state

    def boot_next_consumed(self, domain_id: str, option_id: str) -> None:
        self.source(domain_id).boot_next_consumed(domain_id, option_id)

    def mirror_watchdog(self, domain_id: str, enabled: bool) -> bool:
        """Routed: set on the remote, and this process's view of the remote's values
        forgotten (the next ``setting`` reads them again). Local: False."""
        mirrored = self.source(domain_id).mirror_watchdog(domain_id, enabled)
        if mirrored:
            with self._lock:
                self._seen.pop(domain_id, None)
        return mirrored

    def _saw(self, domain_id: str, state: DomainState) -> None:
        with self._lock:
            self._seen[domain_id] = (self._clock(), dict(state.current))

    def setting(self, domain_id: str, name: str) -> object:
        """Local: the store's value. Routed: the remote's current values as read at most
        ``REMOTE_VALUES_TTL`` seconds ago; when the remote cannot say, the last seen
        (a machine keeps its profile while its remote is away), else None (the
        registry's default applies)."""
        try:
            source = self.source(domain_id)
        except RemoteUnavailable:
            source = None
        if source is self._local:
            return self._local.setting(domain_id, name)
        now = self._clock()
        with self._lock:
            seen = self._seen.get(domain_id)
        if source is not None and (seen is None or now - seen[0] >= REMOTE_VALUES_TTL):
            try:
                seen = (now, dict(source.state_of(domain_id).current))
            except (RemoteUnavailable, StoreUnavailable):
                pass
            else:
                with self._lock:
                    self._seen[domain_id] = seen
        return None if seen is None else seen[1].get(name)
