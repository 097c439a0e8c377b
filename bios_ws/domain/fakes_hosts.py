"""The in-memory host registry and host grants of ``fakes.MemoryStore``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime

from bios_ws.domain.credentials import HostGrant
from bios_ws.domain.hosts import HostEntry, HostRegistry
from bios_ws.domain.ports import HostGrantRepository
from bios_ws.domain.power import MachineRecord


class MemoryHosts(HostRegistry):
    def __init__(self, data: dict[str, HostEntry], machines: dict[str, MachineRecord]) -> None:
        self.data = data
        self._machines = machines  # the unit's own copy, committed with it

    def get(self, name: str) -> HostEntry | None:
        return self.data.get(name)

    def list(self) -> list[HostEntry]:
        return [entry for _, entry in sorted(self.data.items())]

    def add(self, entry: HostEntry) -> None:
        self.data[entry.name] = entry

    def started(self, name: str, at: datetime) -> None:
        entry = self.data.get(name)
        if entry is not None:
            self.data[name] = dataclasses.replace(entry, started_at=at)

    def claim_unassigned(self, name: str) -> int:
        unassigned = [record for record in self._machines.values() if record.host is None]
        for record in unassigned:
            self._machines[record.domain_id] = dataclasses.replace(
                record, host=name, version=record.version + 1)
        return len(unassigned)


class MemoryHostGrants(HostGrantRepository):
    def __init__(self, data: dict[tuple[str, str], HostGrant]) -> None:
        self.data = data

    def granted(self, host: str, domain_id: str) -> bool:
        return (host, domain_id) in self.data

    def list(self, host: str | None = None) -> list[HostGrant]:
        return [grant for key, grant in sorted(self.data.items())
                if host is None or key[0] == host]

    def replace(self, host: str, domain_ids: Iterable[str], at: datetime) -> None:
        kept = {key: grant for key, grant in self.data.items() if key[0] == host}
        self.remove_host(host)
        for domain_id in set(domain_ids):
            self.data[(host, domain_id)] = kept.get((host, domain_id),
                                                    HostGrant(host, domain_id, at))

    def remove_host(self, host: str) -> int:
        gone = [key for key in self.data if key[0] == host]
        for key in gone:
            del self.data[key]
        return len(gone)

    def remove_domain(self, domain_id: str) -> int:
        gone = [key for key in self.data if key[1] == domain_id]
        for key in gone:
            del self.data[key]
        return len(gone)
