"""In-memory fakes of the system-management repositories (``bios_ws.domain.ports``): each
domain's System Event Log, wake alarm and watchdog, copied in and published on commit
like the other fakes. Standard library only.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from bios_ws.domain.ports import SelRepository, TimerRepository
from bios_ws.domain.sel import (
    SelEntry,
    SelLog,
    SelPolicy,
    SelRecord,
    plan_append,
    trim_to,
)
from bios_ws.domain.timers import WakeAlarm, Watchdog


@dataclasses.dataclass
class SystemData:
    #: Each domain's log header (policy, counts) and entries, oldest first.
    logs: dict[str, SelLog] = dataclasses.field(default_factory=dict)
    entries: dict[str, list[SelEntry]] = dataclasses.field(default_factory=dict)
    alarms: dict[str, WakeAlarm] = dataclasses.field(default_factory=dict)
    watchdogs: dict[str, Watchdog] = dataclasses.field(default_factory=dict)

    def copy(self) -> SystemData:
        return SystemData(dict(self.logs), {k: list(v) for k, v in self.entries.items()},
                          dict(self.alarms), dict(self.watchdogs))


class MemorySel(SelRepository):
    def __init__(self, data: SystemData) -> None:
        self.data = data

    def _log(self, domain_id: str) -> SelLog:
        return self.data.logs.get(domain_id) or SelLog(domain_id, SelPolicy())

    def append(self, domain_id: str, record: SelRecord) -> SelEntry | None:
        log = self._log(domain_id)
        held = self.data.entries.setdefault(domain_id, [])
        plan = plan_append(log.policy, len(held))
        if not plan.accept:
            self.data.logs[domain_id] = dataclasses.replace(log, dropped=log.dropped + 1)
            return None
        del held[:plan.evict]
        entry = SelEntry.of(domain_id, log.last_id + 1, record)
        held.append(entry)
        self.data.logs[domain_id] = dataclasses.replace(log, entries=len(held),
                                                        last_id=entry.entry_id)
        return entry

    def log(self, domain_id: str) -> SelLog:
        return self._log(domain_id)

    def entries(self, domain_id: str) -> list[SelEntry]:
        return list(self.data.entries.get(domain_id, []))

    def clear(self, domain_id: str) -> int:
        removed = len(self.data.entries.pop(domain_id, []))
        self.data.logs[domain_id] = dataclasses.replace(self._log(domain_id), entries=0)
        return removed

    def set_policy(self, domain_id: str, policy: SelPolicy) -> int:
        held = self.data.entries.setdefault(domain_id, [])
        gone = trim_to(policy, len(held))
        del held[:gone]
        self.data.logs[domain_id] = dataclasses.replace(self._log(domain_id), policy=policy,
                                                        entries=len(held))
        return gone

    def forget_domain(self, domain_id: str) -> None:
        self.data.logs.pop(domain_id, None)
        self.data.entries.pop(domain_id, None)


class MemoryTimers(TimerRepository):
    def __init__(self, data: SystemData) -> None:
        self.data = data

    def alarm(self, domain_id: str, *, for_update: bool = False) -> WakeAlarm | None:
        return self.data.alarms.get(domain_id)

    def put_alarm(self, alarm: WakeAlarm) -> WakeAlarm:
        old = self.data.alarms.get(alarm.domain_id)
        stored = dataclasses.replace(alarm, version=1 if old is None else old.version + 1)
        self.data.alarms[alarm.domain_id] = stored
        return stored

    def remove_alarm(self, domain_id: str, expected_version: int | None = None) -> bool:
        held = self.data.alarms.get(domain_id)
        if held is None or (expected_version is not None and held.version != expected_version):
            return False
        del self.data.alarms[domain_id]
        return True

    def due_alarms(self, now: datetime) -> list[WakeAlarm]:
        return sorted((a for a in self.data.alarms.values() if a.wake_at <= now),
                      key=lambda a: (a.wake_at, a.domain_id))

    def watchdog(self, domain_id: str, *, for_update: bool = False) -> Watchdog | None:
        return self.data.watchdogs.get(domain_id)

    def save_watchdog(self, watchdog: Watchdog, expected_version: int | None) -> bool:
        held = self.data.watchdogs.get(watchdog.domain_id)
        current = None if held is None else held.version
        if current != expected_version:
            return False
        self.data.watchdogs[watchdog.domain_id] = watchdog
        return True

    def armed_watchdogs(self) -> list[Watchdog]:
        return [w for _, w in sorted(self.data.watchdogs.items()) if w.enabled]

    def forget_domain(self, domain_id: str) -> None:
        self.data.alarms.pop(domain_id, None)
        self.data.watchdogs.pop(domain_id, None)
