"""The in-memory remotes and routes of ``fakes.MemoryStore``."""

from __future__ import annotations

from dataclasses import dataclass, field

from bios_ws.domain.routing import Remote, Route, RoutingRepository


@dataclass
class RoutingData:
    remotes: dict[tuple[str, str], Remote] = field(default_factory=dict)
    routes: dict[tuple[str, str, str | None], Route] = field(default_factory=dict)

    def copy(self) -> RoutingData:
        return RoutingData(dict(self.remotes), dict(self.routes))


class MemoryRouting(RoutingRepository):
    def __init__(self, data: RoutingData) -> None:
        self.data = data  # the unit's own copy, committed with it

    def remotes(self, host: str) -> list[Remote]:
        return [r for (h, _), r in sorted(self.data.remotes.items()) if h == host]

    def add_remote(self, host: str, remote: Remote) -> None:
        self.data.remotes[(host, remote.name)] = remote

    def remove_remote(self, host: str, name: str) -> bool:
        return self.data.remotes.pop((host, name), None) is not None

    def routes(self, host: str) -> list[Route]:
        mine = [r for (h, _, _), r in self.data.routes.items() if h == host]
        return sorted(mine, key=lambda r: (r.capability, r.domain or ""))

    def set_route(self, host: str, route: Route) -> None:
        self.data.routes[(host, route.capability, route.domain)] = route

    def clear_route(self, host: str, capability: str, domain: str | None) -> bool:
        return self.data.routes.pop((host, capability, domain), None) is not None
