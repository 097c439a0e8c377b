"""What a Spyne operation needs to serve one call: who calls, and the use cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bios_ws.domain.principal import Principal
from bios_ws.service.attestation import AttestationService
from bios_ws.service.bios import BiosService


@dataclass(frozen=True)
class Call:
    principal: Principal
    bios: BiosService
    attestation: AttestationService | None = None


def call_of(ctx: Any) -> Call:
    """The ``Call`` the dispatcher put in Spyne's user-defined context."""
    call = ctx.udc
    if not isinstance(call, Call):
        raise TypeError("Spyne method context carries no vbios call")
    return call
