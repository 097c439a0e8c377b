"""The in-memory host registry of ``fakes.MemoryStore``."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from bios_ws.domain.hosts import HostEntry, HostRegistry
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
