"""Admin operations: they name the domain they act on."""

from __future__ import annotations

from typing import Any

from spyne import Integer64, Service, Unicode

from bios_ws.service.bios import BiosService
from bios_ws.soap.context import call_of
from bios_ws.soap.settings_service import SERVICE_NAME
from bios_ws.soap.types import operation, required


class AdminService(Service):  # type: ignore[misc]
    __service_name__ = SERVICE_NAME

    @operation(required(Unicode), returns=required(Integer64), names="Version")
    def ApplyPendingAttributes(ctx: Any, Domain: str) -> int:
        call = call_of(ctx)
        return call.use(BiosService).apply_pending(call.principal, Domain)
