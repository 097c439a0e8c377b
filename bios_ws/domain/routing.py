"""Routing: which installation serves a guest's capability, this one or a remote vBIOS.

A **remote** is another vBIOS installation this host forwards guest calls to: its
name, its URL, and the credential its admin issued to this host (``vbios host add``
there): the certificate (SAN ``urn:vbios:host:<this host>``) and the remote's CA
certificate, which this host pins. The credential's private key is no part of the
record: it stays in the home, encrypted (``bios_ws.remotes``).

A **route** sends one capability, for one domain or for every domain, to a remote (or
back to ``local``). The most specific route wins: a domain's own route over the route
for all domains; with neither, the capability is served here. Remotes and routes are
the host's own (keyed by host in the store): the credential names this host.

A route may allow **cached reads** (``cache_seconds``): while its remote is unavailable,
a read the remote answered less than that many seconds ago is answered from this
host's memory, saying so (``server.answer_cache``; ``docs/routing.md``).
"""

from __future__ import annotations

import abc
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bios_ws.errors import AdminError

LOCAL = "local"
#: The host record whose version moves with every change of remotes or routes: the
#: per-call check reads it alone (``service.routing.RouteKeeper``).
ROUTING_KEY = "routing"
MAX_REMOTE_NAME = 40
#: The longest a route may let a cached answer be served (a day): more is a mistake.
MAX_CACHE_SECONDS = 86_400
_REMOTE_NAME = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,38}[a-z0-9])?")


def check_remote_name(name: str) -> str:
    """``name`` if it can name a remote (a host name's alphabet, not ``local``)."""
    if not isinstance(name, str) or _REMOTE_NAME.fullmatch(name) is None:
        raise AdminError(f"invalid remote name {name!r}: 1 to {MAX_REMOTE_NAME} characters"
                         " of a-z, 0-9, '.' and '-', starting and ending with a letter or"
                         " digit")
    if name == LOCAL:
        raise AdminError(f"{LOCAL!r} names this installation, not a remote")
    return name


def check_remote_url(url: str) -> str:
    """``url`` if it is an https URL with a host (the remote's SOAP endpoint)."""
    scheme, sep, rest = url.partition("://")
    host = rest.split("/", 1)[0]
    if scheme.lower() != "https" or not sep or not host or any(c.isspace() for c in url):
        raise AdminError(f"invalid remote URL {url!r}: an https:// URL of the remote's"
                         " vBIOS endpoint")
    return url


def check_cache_seconds(seconds: int) -> int:
    """``seconds`` if a route may let cached answers be that old (1 s to a day)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) \
            or not 0 < seconds <= MAX_CACHE_SECONDS:
        raise AdminError(f"invalid cache age {seconds!r}: a whole number of seconds from 1 to"
                         f" {MAX_CACHE_SECONDS} (a day)")
    return seconds


@dataclass(frozen=True)
class Remote:
    """A remote installation and this host's credential there (certificate and CA, PEM)."""

    name: str
    url: str
    cert_pem: bytes
    ca_pem: bytes


@dataclass(frozen=True)
class Route:
    """``capability`` for ``domain`` (None: every domain) is served by ``target``
    (a remote's name); while it is unavailable, reads may be answered from answers it
    gave less than ``cache_seconds`` ago (None: never)."""

    capability: str
    domain: str | None
    target: str
    cache_seconds: int | None = None


@dataclass(frozen=True)
class RoutingTable:
    """The routes and remotes in force, as one immutable value."""

    routes: tuple[Route, ...] = ()
    remotes: Mapping[str, Remote] = field(default_factory=dict)
    _by_key: dict[tuple[str, str | None], Route] = field(init=False, repr=False,
                                                         compare=False)
    _domains: frozenset[str | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_key", {(r.capability, r.domain): r
                                             for r in self.routes})
        object.__setattr__(self, "_domains", frozenset(r.domain for r in self.routes))

    def route_for(self, capability: str, domain: str) -> Route | None:
        """The route in force for ``capability`` of ``domain``, or None (served here)."""
        route = self._by_key.get((capability, domain))
        return self._by_key.get((capability, None)) if route is None else route

    def target_for(self, capability: str, domain: str) -> str | None:
        """The remote serving ``capability`` for ``domain``, or None (served here)."""
        route = self.route_for(capability, domain)
        return None if route is None else route.target

    def routes_any(self, domain: str) -> bool:
        """Whether any capability of ``domain`` goes to a remote (the cheap first test)."""
        return None in self._domains or domain in self._domains


def table_of(routes: Iterable[Route], remotes: Iterable[Remote]) -> RoutingTable:
    return RoutingTable(tuple(routes), {r.name: r for r in remotes})


class RoutingRepository(abc.ABC):
    """A host's remotes and routes in the store."""

    @abc.abstractmethod
    def remotes(self, host: str) -> list[Remote]:
        """The host's remotes, by name."""

    @abc.abstractmethod
    def add_remote(self, host: str, remote: Remote) -> None:
        """Record a remote (the caller checked that the name is free)."""

    @abc.abstractmethod
    def remove_remote(self, host: str, name: str) -> bool:
        """Forget a remote; whether there was one."""

    @abc.abstractmethod
    def routes(self, host: str) -> list[Route]:
        """The host's routes, by capability then domain (all domains first)."""

    @abc.abstractmethod
    def set_route(self, host: str, route: Route) -> None:
        """Create or replace the route of (capability, domain)."""

    @abc.abstractmethod
    def clear_route(self, host: str, capability: str, domain: str | None) -> bool:
        """Remove the route of (capability, domain) (it is served here again)."""
