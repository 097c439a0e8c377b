"""System-management requests, handled in the privileged domain: a domain's SMBIOS tables,
its System Event Log, its wake alarm and its watchdog (``bios_ws.domain.sm_requests``).

``handle`` is the one entry: the request's kind decides the privilege it needs
(``target_of``), a state change is refused while the host is Untrusted (restricted mode;
a watchdog pet is not: refusing it would reset the guest), and the request goes to its
handler. A change is audited in the unit of work that makes it; every refusal is audited
(under the refusal limit). Reads and pets are not audited: a pet only moves a deadline,
every few seconds. The timers are fired by ``SystemTimers`` (``timers``).

``SetWatchdog`` arms or disarms the watchdog and sets ``OsWatchdogTimer`` to match (when
the registry has it) in the same unit: it is the OS's watchdog, so no setup password is
asked, as an IPMI watchdog command asks none. For a domain whose settings a remote holds,
the setting is the remote's: set there first, read from there
(``service.watchdog_setting``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from bios_ws.domain import sel
from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.boot_settings import BootSettings
from bios_ws.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bios_ws.domain.principal import Principal, is_domain_id
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.domain.sel import SelEntry, SelLog, SelPolicy
from bios_ws.domain.sm_requests import (
    ClearEventLog,
    ClearWakeAlarm,
    GetEventLog,
    GetSmbios,
    GetWakeAlarm,
    GetWatchdog,
    PetWatchdog,
    SetEventLogPolicy,
    SetWakeAlarm,
    SetWatchdog,
    SmRequest,
    kind_of,
    operation_of,
    target_of,
)
from bios_ws.domain.state import ApplyTime
from bios_ws.domain.timers import (
    DEFAULT_WATCHDOG_SECONDS,
    WATCHDOG_ATTRIBUTE,
    WakeAlarm,
    Watchdog,
    check_timeout,
    check_wake_time,
)
from bios_ws.errors import VbiosError, VersionConflict, WatchdogNotArmed
from bios_ws.service.audit import audit_refusal
from bios_ws.service.bios import WriteGate, outcome_of
from bios_ws.service.power import PowerService
from bios_ws.service.registry_keeper import RegistryKeeper
from bios_ws.service.smbios import read_smbios
from bios_ws.service.timers import COUNTING, SystemTimers
from bios_ws.service.watchdog_setting import WatchdogSetting

T = TypeVar("T")
#: The operation named in the audit entry of a request of no known kind.
UNKNOWN_OPERATION = "SystemManagementRequest"


@dataclass(frozen=True)
class EventLogView:
    log: SelLog
    entries: list[SelEntry]


@dataclass(frozen=True)
class WatchdogView:
    """A domain's watchdog as its callers see it; ``deadline`` when it bites unless
    petted (None: disarmed, or not counting while the machine does not run)."""

    domain_id: str
    enabled: bool
    timeout_seconds: int
    last_pet: datetime | None
    deadline: datetime | None
    expirations: int


Handler = Callable[[UnitOfWork, Principal, str, Any], Any]


class SystemManagementService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, registry: AttributeRegistry,
                 power: PowerService, gate: WriteGate | None = None,
                 settings: BootSettings | None = None) -> None:
        """``settings``: where each domain's settings are (None: all in the store)."""
        self._uow = uow
        self._clock = clock
        self._registry = RegistryKeeper(registry)  # the registry in force, as it changes
        self._gate = gate
        self._setting = WatchdogSetting(settings)
        self.timers = SystemTimers(uow, clock, power, disabled=self._setting.disabled)
        self._handlers: Mapping[type[SmRequest], Handler] = {
            GetSmbios: lambda uow, principal, domain_id, request: read_smbios(
                self._uow, self._clock, domain_id),
            GetEventLog: self._event_log, ClearEventLog: self._clear_log,
            SetEventLogPolicy: self._set_policy, GetWakeAlarm: self._alarm,
            SetWakeAlarm: self._set_alarm, ClearWakeAlarm: self._clear_alarm,
            GetWatchdog: self._watchdog, SetWatchdog: self._set_watchdog,
            PetWatchdog: self._pet,
        }

    def handle(self, principal: Principal, request: SmRequest) -> Any:
        """Authorize, route and audit ``request`` (see the module docstring): an
        SmbiosTables, EventLogView, int (entries removed), SelLog, WakeAlarm or None,
        bool (an alarm was cleared) or WatchdogView, by the request's kind."""
        named = getattr(request, "domain_id", None)
        operation = UNKNOWN_OPERATION
        domain_id = named if isinstance(named, str) and is_domain_id(named) else None
        try:
            kind = kind_of(request)
            operation = operation_of(request)
            domain_id = target_of(principal, request)
            if kind.changes and self._gate is not None:
                self._gate()
            handler = self._handlers[type(request)]
            with self._uow() as uow:
                return handler(uow, principal, domain_id, request)
        except VbiosError as exc:
            audit_refusal(self._uow, self._audit(principal, operation, domain_id,
                                                 outcome_of(exc), {}))
            raise

    # -- the event log -----------------------------------------------------------------

    def _event_log(self, uow: UnitOfWork, principal: Principal, domain_id: str,
                   request: GetEventLog) -> EventLogView:
        uow.domains.get(domain_id)
        return EventLogView(uow.sel.log(domain_id), uow.sel.entries(domain_id))

    def _clear_log(self, uow: UnitOfWork, principal: Principal, domain_id: str,
                   request: ClearEventLog) -> int:
        uow.domains.get(domain_id, for_update=True)
        removed = uow.sel.clear(domain_id)
        now = self._clock()
        uow.sel.append(domain_id, sel.log_cleared(now, str(principal), removed))
        self._commit(uow, principal, request, domain_id, {"removed": removed})
        return removed

    def _set_policy(self, uow: UnitOfWork, principal: Principal, domain_id: str,
                    request: SetEventLogPolicy) -> SelLog:
        policy = SelPolicy(request.max_entries, request.overwrite)
        uow.domains.get(domain_id, for_update=True)
        removed = uow.sel.set_policy(domain_id, policy)
        self._commit(uow, principal, request, domain_id, {
            "max_entries": policy.max_entries, "overwrite": policy.overwrite.value,
            "removed": removed})
        return self._read(lambda unit: unit.sel.log(domain_id))

    # -- the wake alarm ----------------------------------------------------------------

    def _alarm(self, uow: UnitOfWork, principal: Principal, domain_id: str,
               request: GetWakeAlarm) -> WakeAlarm | None:
        uow.domains.get(domain_id)
        return uow.timers.alarm(domain_id)

    def _set_alarm(self, uow: UnitOfWork, principal: Principal, domain_id: str,
                   request: SetWakeAlarm) -> WakeAlarm:
        now = self._clock()
        wake_at = check_wake_time(request.wake_at, now)
        uow.domains.get(domain_id, for_update=True)
        stored = uow.timers.put_alarm(WakeAlarm(domain_id, wake_at, str(principal), now))
        self._commit(uow, principal, request, domain_id, {"wake_at": wake_at.isoformat()})
        return stored

    def _clear_alarm(self, uow: UnitOfWork, principal: Principal, domain_id: str,
                     request: ClearWakeAlarm) -> bool:
        uow.domains.get(domain_id, for_update=True)
        removed = uow.timers.remove_alarm(domain_id)
        self._commit(uow, principal, request, domain_id, {"removed": removed})
        return removed

    # -- the watchdog ------------------------------------------------------------------

    def _watchdog(self, uow: UnitOfWork, principal: Principal, domain_id: str,
                  request: GetWatchdog) -> WatchdogView:
        uow.domains.get(domain_id)
        return self._view(uow, domain_id, uow.timers.watchdog(domain_id))

    def _set_watchdog(self, uow: UnitOfWork, principal: Principal, domain_id: str,
                      request: SetWatchdog) -> WatchdogView:
        if request.timeout_seconds is not None:
            check_timeout(request.timeout_seconds)  # before the remote's setting moves
        mirrored = self._setting.mirror(domain_id, request.enabled)  # before the unit
        state = uow.domains.get(domain_id, for_update=True)
        held = uow.timers.watchdog(domain_id)
        timeout = check_timeout(request.timeout_seconds if request.timeout_seconds is not None
                                else held.timeout_seconds if held is not None
                                else DEFAULT_WATCHDOG_SECONDS)
        wanted = "Enabled" if request.enabled else "Disabled"
        # a domain's values hold OsWatchdogTimer exactly when the registry in force has it
        if not mirrored and state.current.get(WATCHDOG_ATTRIBUTE, wanted) != wanted:
            before = state.version
            state.set_attributes(self._registry.refresh(uow), {WATCHDOG_ATTRIBUTE: wanted},
                                 ApplyTime.IMMEDIATE)
            state.version = before + 1
            uow.domains.save(state, before)
        watchdog = Watchdog(domain_id, request.enabled, timeout, self._clock(),
                            str(principal), 1 if held is None else held.version + 1,
                            0 if held is None else held.expirations)
        if not uow.timers.save_watchdog(watchdog, None if held is None else held.version):
            raise VersionConflict("the watchdog changed meanwhile: try again")
        self._commit(uow, principal, request, domain_id, {
            "enabled": request.enabled, "timeout_seconds": timeout})
        return self._read(lambda unit: self._view(unit, domain_id, watchdog))

    def _pet(self, uow: UnitOfWork, principal: Principal, domain_id: str,
             request: PetWatchdog) -> WatchdogView:
        disabled = self._setting.disabled(domain_id)  # None: the store's (before the unit)
        held = uow.timers.watchdog(domain_id, for_update=True)
        if disabled is None:
            setting = uow.domains.get(domain_id).current.get(WATCHDOG_ATTRIBUTE)
            disabled = setting == "Disabled"
        if held is None or not held.enabled or disabled:
            raise WatchdogNotArmed("the watchdog is not armed: SetWatchdog arms it",
                                   attribute=WATCHDOG_ATTRIBUTE)
        petted = held.petted(self._clock())
        if not uow.timers.save_watchdog(petted, held.version):
            raise VersionConflict("the watchdog changed meanwhile: try again")
        uow.commit()
        return self._read(lambda unit: self._view(unit, domain_id, petted))

    def _view(self, uow: UnitOfWork, domain_id: str, watchdog: Watchdog | None
              ) -> WatchdogView:
        if watchdog is None:
            return WatchdogView(domain_id, False, DEFAULT_WATCHDOG_SECONDS, None, None, 0)
        record = uow.machines.get(domain_id)
        counting = watchdog.enabled and record.state in COUNTING
        deadline = watchdog.deadline(record.last_reset_time) if counting else None
        return WatchdogView(domain_id, watchdog.enabled, watchdog.timeout_seconds,
                            watchdog.last_pet, deadline, watchdog.expirations)

    # -- helpers -----------------------------------------------------------------------

    def _read(self, read: Callable[[UnitOfWork], T]) -> T:
        with self._uow() as uow:
            return read(uow)

    def _commit(self, uow: UnitOfWork, principal: Principal, request: SmRequest,
                domain_id: str, changes: Mapping[str, object]) -> None:
        uow.audit.append(self._audit(principal, operation_of(request), domain_id,
                                     "ok", changes))
        uow.commit()

    def _audit(self, principal: Principal, operation: str, domain_id: str | None,
               outcome: str, changes: Mapping[str, object]) -> AuditRecord:
        return AuditRecord(self._clock(), str(principal), operation, domain_id, outcome,
                           digest_changes(changes))
