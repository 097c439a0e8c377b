"""The in-memory fake of the thermal repository (``bios_ws.domain.ports.ThermalRepository``).

Standard library only.
"""

from __future__ import annotations

import builtins

from bios_ws.domain.ports import ThermalRepository
from bios_ws.domain.thermal_policy import ThermalLevel, ThermalRecord


class MemoryThermal(ThermalRepository):
    def __init__(self, data: dict[str, ThermalRecord]) -> None:
        self.data = data

    def get(self, domain_id: str) -> ThermalRecord | None:
        return self.data.get(domain_id)

    def add(self, record: ThermalRecord) -> bool:
        if record.domain_id in self.data:
            return False
        self.data[record.domain_id] = record
        return True

    def save(self, record: ThermalRecord, expected_version: int) -> bool:
        stored = self.data.get(record.domain_id)
        if stored is None or stored.version != expected_version:
            return False
        self.data[record.domain_id] = record
        return True

    def delete(self, domain_id: str) -> None:
        self.data.pop(domain_id, None)

    def list(self) -> list[ThermalRecord]:
        return [record for _, record in sorted(self.data.items())]

    def unsettled(self, ambient: float, within: float) -> builtins.list[ThermalRecord]:
        return [record for record in self.list()
                if record.level is not ThermalLevel.NORMAL or record.overrides
                or abs(record.temperature - ambient) > within]
