"""System-management operations: SMBIOS, the System Event Log, the wake alarm and the watchdog
of a guest's own domain, and the admin's counterparts naming a domain (plus the log's
policy, the admin's alone). Each builds its typed request (``domain.sm_requests``) and
hands it to ``SystemManagementService.handle``, which authorizes, routes and audits it.
"""

from __future__ import annotations

from typing import Any

from spyne import Boolean, Integer32, Integer64, Service, Unicode

from bios_ws.domain import sm_requests as sm
from bios_ws.domain.sel import OverWritePolicy
from bios_ws.domain.timers import parse_wake_time
from bios_ws.service.system_management import SystemManagementService
from bios_ws.soap import sm_codec as codec
from bios_ws.soap.context import call_of
from bios_ws.soap.settings_service import SERVICE_NAME
from bios_ws.soap.sm_types import (
    OverWritePolicyType,
    SelEntryList,
    SmbiosBaseboard,
    SmbiosBios,
    SmbiosChassis,
    SmbiosSystem,
    WakeAlarm,
    Watchdog,
)
from bios_ws.soap.types import operation, optional, required

_SMBIOS = (required(SmbiosBios), required(SmbiosSystem), required(SmbiosBaseboard),
           required(SmbiosChassis))
_LOG = (required(Integer32), required(OverWritePolicyType), required(Integer64),
        required(SelEntryList))
_POLICY = (required(Integer32), required(OverWritePolicyType), required(Integer64),
           required(Integer64))


def _handle(ctx: Any, request: sm.SmRequest) -> Any:
    call = call_of(ctx)
    return call.use(SystemManagementService).handle(call.principal, request)


def _domain(domain: Any) -> str:
    return str(domain)


def _watchdog(enabled: Any, timeout: Any) -> dict[str, Any]:
    return {"enabled": bool(enabled), "timeout_seconds": None if timeout is None
            else int(timeout)}


class SystemManagementSoapService(Service):  # type: ignore[misc]
    __service_name__ = SERVICE_NAME

    # -- the guest's own domain --------------------------------------------------------

    @operation(returns=_SMBIOS, names=codec.SMBIOS_NAMES)
    def GetSmbios(ctx: Any) -> tuple[Any, ...]:
        return codec.smbios_out(_handle(ctx, sm.GetSmbios()))

    @operation(returns=_LOG, names=codec.LOG_NAMES)
    def GetSystemEventLog(ctx: Any) -> tuple[Any, ...]:
        return codec.event_log_out(_handle(ctx, sm.GetEventLog()))

    @operation(returns=required(Integer64), names="Removed")
    def ClearSystemEventLog(ctx: Any) -> int:
        return int(_handle(ctx, sm.ClearEventLog()))

    @operation(returns=optional(WakeAlarm), names="Alarm")
    def GetWakeAlarm(ctx: Any) -> Any:
        return codec.alarm_out(_handle(ctx, sm.GetWakeAlarm()))

    @operation(required(Unicode), returns=required(WakeAlarm), names="Alarm")
    def SetWakeAlarm(ctx: Any, WakeTime: str) -> Any:
        request = sm.SetWakeAlarm(wake_at=parse_wake_time(str(WakeTime)))
        return codec.alarm_out(_handle(ctx, request))

    @operation(returns=required(Boolean), names="Cleared")
    def ClearWakeAlarm(ctx: Any) -> bool:
        return bool(_handle(ctx, sm.ClearWakeAlarm()))

    @operation(returns=required(Watchdog), names="Watchdog")
    def GetWatchdog(ctx: Any) -> Any:
        return codec.watchdog_out(_handle(ctx, sm.GetWatchdog()))

    @operation(required(Boolean), optional(Integer32), returns=required(Watchdog),
               names="Watchdog")
    def SetWatchdog(ctx: Any, Enabled: bool, TimeoutSeconds: int | None) -> Any:
        request = sm.SetWatchdog(**_watchdog(Enabled, TimeoutSeconds))
        return codec.watchdog_out(_handle(ctx, request))

    @operation(returns=required(Watchdog), names="Watchdog")
    def PetWatchdog(ctx: Any) -> Any:
        return codec.watchdog_out(_handle(ctx, sm.PetWatchdog()))

    # -- the admin, naming a domain ----------------------------------------------------

    @operation(required(Unicode), returns=_SMBIOS, names=codec.SMBIOS_NAMES)
    def GetDomainSmbios(ctx: Any, Domain: str) -> tuple[Any, ...]:
        return codec.smbios_out(_handle(ctx, sm.GetSmbios(domain_id=_domain(Domain))))

    @operation(required(Unicode), returns=_LOG, names=codec.LOG_NAMES)
    def GetDomainSystemEventLog(ctx: Any, Domain: str) -> tuple[Any, ...]:
        return codec.event_log_out(_handle(ctx, sm.GetEventLog(domain_id=_domain(Domain))))

    @operation(required(Unicode), returns=required(Integer64), names="Removed")
    def ClearDomainSystemEventLog(ctx: Any, Domain: str) -> int:
        return int(_handle(ctx, sm.ClearEventLog(domain_id=_domain(Domain))))

    @operation(required(Unicode), required(Integer32), required(OverWritePolicyType),
               returns=_POLICY, names=codec.POLICY_NAMES)
    def SetDomainSystemEventLogPolicy(ctx: Any, Domain: str, MaxNumberOfRecords: int,
                                      OverWritePolicy: str) -> tuple[Any, ...]:
        request = sm.SetEventLogPolicy(domain_id=_domain(Domain),
                                       max_entries=int(MaxNumberOfRecords),
                                       overwrite=_policy(OverWritePolicy))
        return codec.policy_out(_handle(ctx, request))

    @operation(required(Unicode), returns=optional(WakeAlarm), names="Alarm")
    def GetDomainWakeAlarm(ctx: Any, Domain: str) -> Any:
        return codec.alarm_out(_handle(ctx, sm.GetWakeAlarm(domain_id=_domain(Domain))))

    @operation(required(Unicode), required(Unicode), returns=required(WakeAlarm),
               names="Alarm")
    def SetDomainWakeAlarm(ctx: Any, Domain: str, WakeTime: str) -> Any:
        request = sm.SetWakeAlarm(domain_id=_domain(Domain),
                                  wake_at=parse_wake_time(str(WakeTime)))
        return codec.alarm_out(_handle(ctx, request))

    @operation(required(Unicode), returns=required(Boolean), names="Cleared")
    def ClearDomainWakeAlarm(ctx: Any, Domain: str) -> bool:
        return bool(_handle(ctx, sm.ClearWakeAlarm(domain_id=_domain(Domain))))

    @operation(required(Unicode), returns=required(Watchdog), names="Watchdog")
    def GetDomainWatchdog(ctx: Any, Domain: str) -> Any:
        return codec.watchdog_out(_handle(ctx, sm.GetWatchdog(domain_id=_domain(Domain))))

    @operation(required(Unicode), required(Boolean), optional(Integer32),
               returns=required(Watchdog), names="Watchdog")
    def SetDomainWatchdog(ctx: Any, Domain: str, Enabled: bool,
                          TimeoutSeconds: int | None) -> Any:
        request = sm.SetWatchdog(domain_id=_domain(Domain),
                                 **_watchdog(Enabled, TimeoutSeconds))
        return codec.watchdog_out(_handle(ctx, request))


def _policy(value: Any) -> OverWritePolicy:
    return OverWritePolicy(str(value))
