"""Guest operations on the boot order and the one-time boot target."""

from __future__ import annotations

from typing import Any

from spyne import Integer64, Service, Unicode

from bios_ws.service.bios import BiosService
from bios_ws.soap import codec, types
from bios_ws.soap.context import call_of
from bios_ws.soap.settings_service import SERVICE_NAME
from bios_ws.soap.types import operation, optional, required


class BootService(Service):  # type: ignore[misc]
    __service_name__ = SERVICE_NAME

    @operation(
        returns=(
            required(Integer64),
            required(types.BootOptionList),
            required(types.BootOrder),
            optional(Unicode),
        ),
        names=("Version", "Options", "Order", "BootNext"),
    )
    def GetBootOrder(ctx: Any) -> tuple[int, Any, Any, str | None]:
        call = call_of(ctx)
        view = call.use(BiosService).get_boot(call.principal)
        return (
            view.version,
            codec.encode_boot_options(view.options),
            codec.encode_boot_order(view.order),
            view.boot_next,
        )

    @operation(
        required(types.BootOrder),
        optional(Integer64),
        optional(Unicode),
        returns=required(Integer64),
        names="Version",
    )
    def SetBootOrder(
        ctx: Any, Order: Any, ExpectedVersion: int | None, Password: str | None
    ) -> int:
        call = call_of(ctx)
        order = codec.decode_strings(Order, "OptionId")
        bios = call.use(BiosService)
        return bios.set_boot_order(call.principal, order, ExpectedVersion, Password)

    @operation(
        optional(Unicode),
        optional(Integer64),
        optional(Unicode),
        returns=required(Integer64),
        names="Version",
    )
    def SetBootNext(
        ctx: Any, BootNext: str | None, ExpectedVersion: int | None, Password: str | None
    ) -> int:
        call = call_of(ctx)
        bios = call.use(BiosService)
        return bios.set_boot_next(call.principal, BootNext, ExpectedVersion, Password)
