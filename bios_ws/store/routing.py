"""The remotes and routes tables (``domain.routing``): a host's own, keyed by host."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update

from bios_ws.domain.routing import Remote, Route, RoutingRepository
from bios_ws.store import schema
from bios_ws.store.engine import store_errors

if TYPE_CHECKING:
    from bios_ws.store.sql import SqlUnitOfWork

_remotes = schema.remotes
_routes = schema.routes
ALL_DOMAINS = ""  # the routes table's "every domain" (a primary key has no NULL)


class SqlRouting(RoutingRepository):
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    def remotes(self, host: str) -> list[Remote]:
        conn = self._uow.connection(write=False)
        with store_errors():
            rows = conn.execute(select(_remotes).where(_remotes.c.host == host)
                                .order_by(_remotes.c.name)).all()
        return [_remote(row) for row in rows]

    def add_remote(self, host: str, remote: Remote) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            conn.execute(insert(_remotes).values(host=host, name=remote.name, url=remote.url,
                                                 cert_pem=remote.cert_pem,
                                                 ca_pem=remote.ca_pem))

    def remove_remote(self, host: str, name: str) -> bool:
        conn = self._uow.connection(write=True)
        with store_errors():
            result = conn.execute(delete(_remotes).where(_remotes.c.host == host,
                                                         _remotes.c.name == name))
        return bool(result.rowcount)

    def routes(self, host: str) -> list[Route]:
        conn = self._uow.connection(write=False)
        with store_errors():
            rows = conn.execute(select(_routes).where(_routes.c.host == host)
                                .order_by(_routes.c.capability, _routes.c.domain)).all()
        return [Route(str(row.capability), str(row.domain) or None, str(row.target),
                      None if row.cache_seconds is None else int(row.cache_seconds))
                for row in rows]

    def set_route(self, host: str, route: Route) -> None:
        conn = self._uow.connection(write=True)
        key = (_routes.c.host == host, _routes.c.capability == route.capability,
               _routes.c.domain == (route.domain or ALL_DOMAINS))
        with store_errors():
            done = conn.execute(update(_routes).where(*key).values(
                target=route.target, cache_seconds=route.cache_seconds))
            if not done.rowcount:
                conn.execute(insert(_routes).values(
                    host=host, capability=route.capability,
                    domain=route.domain or ALL_DOMAINS, target=route.target,
                    cache_seconds=route.cache_seconds))

    def clear_route(self, host: str, capability: str, domain: str | None) -> bool:
        conn = self._uow.connection(write=True)
        with store_errors():
            result = conn.execute(delete(_routes).where(
                _routes.c.host == host, _routes.c.capability == capability,
                _routes.c.domain == (domain or ALL_DOMAINS)))
        return bool(result.rowcount)


def _remote(row: Any) -> Remote:
    return Remote(str(row.name), str(row.url), bytes(row.cert_pem), bytes(row.ca_pem))
