"""Routing use cases: the admin's remotes and routes (``domain.routing``), and the table
in force as each serving worker sees it.

Every change of a remote or a route moves the host record ``routing@<host>`` in the same
transaction; ``RouteKeeper`` compares its version on each call (one primary-key read, as
``service.registry_keeper`` does for the registry in force) and reloads the table only
when it moved, so a route set with ``vbios route set`` applies to the next guest call of
every worker, without a restart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.hosts import host_key
from bios_ws.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bios_ws.domain.principal import Principal
from bios_ws.domain.routing import (
    LOCAL,
    ROUTING_KEY,
    Remote,
    Route,
    RoutingTable,
    check_cache_seconds,
    check_remote_name,
    check_remote_url,
    table_of,
)
from bios_ws.errors import AdminError


@dataclass(frozen=True)
class RoutingView:
    """What ``vbios route show`` and ``remote list`` print."""

    remotes: tuple[Remote, ...]
    routes: tuple[Route, ...]


class RoutingService:
    """``capabilities``: every registered capability -> None if it may be routed, else
    why it stays local (from ``bios_ws.capabilities``, the one list)."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock,
                 capabilities: Mapping[str, str | None], *, host: str | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self._capabilities = capabilities
        self._host = host or ""
        self._key = host_key(ROUTING_KEY, host)

    @property
    def record_key(self) -> str:
        return self._key

    def add_remote(self, principal: Principal, remote: Remote) -> None:
        principal.require_admin()
        check_remote_name(remote.name)
        check_remote_url(remote.url)
        with self._uow() as uow:
            uow.begin_writing()
            if any(r.name == remote.name for r in uow.routing.remotes(self._host)):
                raise AdminError(f"remote {remote.name} exists already (vbios remote remove"
                                 f" {remote.name} first)")
            uow.routing.add_remote(self._host, remote)
            self._changed(uow, principal, "AddRemote", None,
                          {"remote": remote.name, "url": remote.url})
            uow.commit()

    def remove_remote(self, principal: Principal, name: str) -> None:
        principal.require_admin()
        with self._uow() as uow:
            uow.begin_writing()
            users = [r for r in uow.routing.routes(self._host) if r.target == name]
            if users:
                used = ", ".join(_describe(r) for r in users)
                raise AdminError(f"remote {name} serves {used}: route them elsewhere first"
                                 f" (vbios route set CAPABILITY local)")
            if not uow.routing.remove_remote(self._host, name):
                raise AdminError(f"no remote named {name}")
            self._changed(uow, principal, "RemoveRemote", None, {"remote": name})
            uow.commit()

    def set_route(self, principal: Principal, capability: str, target: str,
                  domain: str | None = None, *, cache_seconds: int | None = None
                  ) -> Route | None:
        """Route ``capability`` (for ``domain``, or every domain) to remote ``target``, or
        back here (``local``); the route now in force, None for local. ``cache_seconds``:
        while the remote is unavailable, its answers to reads at most that old may be
        served from this host's memory (None: never)."""
        principal.require_admin()
        name = self._routable(capability)
        if cache_seconds is not None:
            if target == LOCAL:
                raise AdminError("a cache is for the answers of a remote: a capability"
                                 " served here is never answered from one (drop --cache)")
            check_cache_seconds(cache_seconds)
        with self._uow() as uow:
            uow.begin_writing()
            if domain is not None:
                uow.domains.get(domain)  # DomainNotFound: it exists on both sides
            if target == LOCAL:
                route = None
                uow.routing.clear_route(self._host, name, domain)
            else:
                if not any(r.name == target for r in uow.routing.remotes(self._host)):
                    raise AdminError(f"no remote named {target} (vbios remote add {target}"
                                     " URL --bundle DIR)")
                route = Route(name, domain, target, cache_seconds)
                uow.routing.set_route(self._host, route)
            self._changed(uow, principal, "SetRoute", domain,
                          {"capability": name, "target": target,
                           "cache_seconds": cache_seconds})
            uow.commit()
        return route

    def view(self, principal: Principal) -> RoutingView:
        principal.require_admin()
        with self._uow() as uow:
            return RoutingView(tuple(uow.routing.remotes(self._host)),
                               tuple(uow.routing.routes(self._host)))

    def table(self, uow: UnitOfWork) -> RoutingTable:
        """The table in force, read within ``uow``."""
        return table_of(uow.routing.routes(self._host), uow.routing.remotes(self._host))

    def _routable(self, capability: str) -> str:
        wanted = capability.strip().lower().replace("-", " ")
        if wanted not in self._capabilities:
            raise AdminError(f"no capability named {capability!r}; routable:"
                             f" {', '.join(self.routable())}")
        reason = self._capabilities[wanted]
        if reason is not None:
            raise AdminError(f"{wanted} stays local: {reason}")
        return wanted

    def routable(self) -> list[str]:
        return [name for name, reason in self._capabilities.items() if reason is None]

    def _changed(self, uow: UnitOfWork, principal: Principal, operation: str,
                 domain: str | None, changes: dict[str, object]) -> None:
        now = self._clock()
        uow.records.put(self._key, "", now)
        uow.audit.append(AuditRecord(now, str(principal), operation, domain, "ok",
                                     digest_changes(changes)))


class RouteKeeper:
    """The routing table in force for one process: reloaded when the store's routing
    record moved (one primary-key read per call while it did not)."""

    def __init__(self, service: RoutingService) -> None:
        self._service = service
        self._held: tuple[int | None, RoutingTable] = (None, RoutingTable())

    def table(self, uow: UnitOfWork) -> RoutingTable:
        version = uow.records.version(self._service.record_key)
        generation, table = self._held
        if version is None or version == generation:
            return table
        fresh = self._service.table(uow)
        self._held = (version, fresh)
        return fresh


def _describe(route: Route) -> str:
    return route.capability + ("" if route.domain is None else f" of {route.domain}")
