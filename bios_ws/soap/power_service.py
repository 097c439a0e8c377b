"""Power operations: a guest's own (GetPowerState, Reset) and the admin's, naming a domain.

An unknown ResetType is a contract error (the schema's enumeration); a request
that makes no sense in the domain's state is an ``InvalidPowerTransition``
fault naming the state.
"""

from __future__ import annotations

from typing import Any

from spyne import Boolean, Service, Unicode

from bios_ws.domain import power as model
from bios_ws.service.power import PowerService, PowerView, ResetOutcome
from bios_ws.soap.attestation_codec import iso
from bios_ws.soap.context import call_of
from bios_ws.soap.power_types import (
    MachineKindType,
    PowerStateType,
    ResetCauseType,
    ResetTypeType,
)
from bios_ws.soap.settings_service import SERVICE_NAME
from bios_ws.soap.types import operation, optional, required

_STATE = (required(PowerStateType), optional(ResetCauseType), optional(Unicode),
          required(Boolean))
_STATE_NAMES = ("PowerState", "LastResetCause", "LastResetTime", "PendingChanges")
_OUTCOME = (required(PowerStateType), required(Boolean), required(Unicode))
_OUTCOME_NAMES = ("PowerState", "PendingChanges", "Message")


def _state(view: PowerView) -> tuple[Any, ...]:
    cause = None if view.last_reset_cause is None else view.last_reset_cause.value
    time = None if view.last_reset_time is None else iso(view.last_reset_time)
    return view.state.value, cause, time, view.pending_changes


def _outcome(outcome: ResetOutcome) -> tuple[Any, ...]:
    return outcome.state.value, outcome.pending_changes, outcome.message


class PowerSoapService(Service):  # type: ignore[misc]
    __service_name__ = SERVICE_NAME

    @operation(returns=_STATE, names=_STATE_NAMES)
    def GetPowerState(ctx: Any) -> tuple[Any, ...]:
        call = call_of(ctx)
        return _state(call.use(PowerService).get_power(call.principal))

    @operation(required(ResetTypeType), returns=_OUTCOME, names=_OUTCOME_NAMES)
    def Reset(ctx: Any, ResetType: str) -> tuple[Any, ...]:
        call = call_of(ctx)
        request = model.ResetType(str(ResetType))
        return _outcome(call.use(PowerService).reset(call.principal, request))

    @operation(required(Unicode), returns=(*_STATE, required(MachineKindType)),
               names=(*_STATE_NAMES, "Machine"))
    def GetDomainPowerState(ctx: Any, Domain: str) -> tuple[Any, ...]:
        call = call_of(ctx)
        view = call.use(PowerService).get_domain_power(call.principal, Domain)
        return (*_state(view), view.kind.value)

    @operation(required(Unicode), required(ResetTypeType), returns=_OUTCOME,
               names=_OUTCOME_NAMES)
    def ResetDomain(ctx: Any, Domain: str, ResetType: str) -> tuple[Any, ...]:
        call = call_of(ctx)
        request = model.ResetType(str(ResetType))
        return _outcome(call.use(PowerService).reset_domain(call.principal, Domain, request))
