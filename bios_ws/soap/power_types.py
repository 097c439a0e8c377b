"""The power contract's types: Redfish's power states, reset types and reset causes."""

from __future__ import annotations

from spyne import Enum

from bios_ws.domain.power import MachineKind, PowerState, ResetCause, ResetType
from bios_ws.soap.types import TNS

PowerStateType = Enum(*(s.value for s in PowerState), type_name="PowerState").customize(
    __namespace__=TNS)
ResetTypeType = Enum(*(t.value for t in ResetType), type_name="ResetType").customize(
    __namespace__=TNS)
ResetCauseType = Enum(*(c.value for c in ResetCause), type_name="ResetCause").customize(
    __namespace__=TNS)
MachineKindType = Enum(*(k.value for k in MachineKind), type_name="MachineKind").customize(
    __namespace__=TNS)
