"""Wiring of issue 18 ("BIOS in a cloud"): the routing table in force, the pools of
connections to the remotes, and what is built on them: the forwarding of guest calls,
where a boot's settings come from, and the remote's side of the host protocol.

Used by ``bios_ws.bootstrap`` (every process: a QEMU guest's keeper process boots its
machine with a routed domain's settings too) and ``App.wsgi`` (a serving process).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bios_ws.config import Config
from bios_ws.domain.ports import UnitOfWorkFactory
from bios_ws.domain.routing import Remote, RoutingTable
from bios_ws.service.bios import BiosService, WriteGate, utc_now
from bios_ws.service.boot_settings import LocalBootSettings, RoutedBootSettings
from bios_ws.service.routing import RouteKeeper, RoutingService

if TYPE_CHECKING:
    import ssl

    from bios_ws.server.forwarding import RemotePools
    from bios_ws.server.identity import WSGIApp
    from bios_ws.service.use_cases import UseCases

TableSource = Callable[[], RoutingTable]


def route_table(uow: UnitOfWorkFactory, host: str | None) -> TableSource:
    """The routing table in force, read per call (``RouteKeeper``: reloaded when the
    store's routing record moved). The service is used for its table only."""
    keeper = RouteKeeper(RoutingService(uow, utc_now, {}, host=host))

    def table() -> RoutingTable:
        with uow() as unit:
            return keeper.table(unit)

    return table


def remote_pools(config: Config) -> RemotePools:
    """One pool of kept-alive connections per remote, with this host's credential there
    (loaded on first use: it may unseal the server key's passphrase)."""
    from bios_ws.pki.remote_credentials import client_context, key_path
    from bios_ws.server.forwarding import RemotePools

    home = config.home

    def context_for(remote: Remote) -> ssl.SSLContext:
        return client_context(remote.cert_pem, remote.ca_pem,
                              key_path(home.pki_dir, remote.name),
                              home.key_passphrase("server"))

    return RemotePools(context_for, timeout=config.server.remote_timeout)


def boot_settings(bios: BiosService, table: TableSource, pools: RemotePools,
                  gate: WriteGate | None) -> RoutedBootSettings:
    """Where each boot's settings come from: here, or the remote of the domain's
    settings route (``docs/routing.md``, "Machines of routed domains")."""
    from bios_ws.server.remote_boot import RemoteBootSettings

    return RoutedBootSettings(LocalBootSettings(bios), table,
                              lambda remote: RemoteBootSettings(pools, remote, gate=gate))


def forwarder(app: WSGIApp, table: TableSource, pools: RemotePools) -> WSGIApp:
    """Guest calls of routed capabilities go to their remote, and so do the admin's
    calls of the platform operations for a routed domain (docs/routing.md)."""
    from bios_ws.capabilities import (
        operation_capabilities,
        platform_operations,
        read_operations,
    )
    from bios_ws.server.forwarding import Forwarder

    return Forwarder(app, table=table, operations=operation_capabilities(),
                     reads=read_operations(), platform=platform_operations(), pools=pools)


def host_route(app: WSGIApp, use_cases: UseCases, table: TableSource) -> WSGIApp:
    """The remote's side of the host protocol beside ``app`` (docs/remote.md); a domain
    whose settings this installation routes onward is refused there."""
    from bios_ws.domain.boot_settings import SETTINGS
    from bios_ws.server.host_route import HostRoute
    from bios_ws.service.credentials import CredentialService
    from bios_ws.service.host_boot import HostBoot

    return HostRoute(app, HostBoot(use_cases.use(BiosService)),
                     audit_refused=use_cases.use(CredentialService).audit_refused,
                     served_here=lambda domain: table().target_for(SETTINGS, domain) is None)
