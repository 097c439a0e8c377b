"""Guest operations on BIOS attributes: registry, values, pending values, passwords."""

from __future__ import annotations

from typing import Any

from spyne import Boolean, Integer64, Service, Unicode

from bios_ws.domain.state import ApplyTime as DomainApplyTime
from bios_ws.service.bios import BiosService
from bios_ws.soap import codec, types
from bios_ws.soap.context import call_of
from bios_ws.soap.types import operation, optional, required

SERVICE_NAME = "VbiosService"


class SettingsService(Service):  # type: ignore[misc]
    __service_name__ = SERVICE_NAME

    @operation(
        returns=(required(Unicode), required(types.AttributeDefinitionList)),
        names=("RegistryVersion", "Attributes"),
    )
    def GetAttributeRegistry(ctx: Any) -> tuple[str, Any]:
        call = call_of(ctx)
        registry = call.use(BiosService).get_registry(call.principal)
        return registry.registry_version, codec.encode_registry(registry)

    @operation(
        optional(types.NameList),
        returns=(required(Integer64), required(Boolean), required(types.AttributeValueList)),
        names=("Version", "SetupPasswordSet", "Attributes"),
    )
    def GetAttributes(ctx: Any, Names: Any) -> tuple[int, bool, Any]:
        call = call_of(ctx)
        names = codec.decode_strings(Names, "Name") or None
        view = call.use(BiosService).get_attributes(call.principal, names)
        return view.version, view.setup_password_set, codec.render_values(view.values)

    @operation(
        required(types.AttributeValueList),
        required(types.ApplyTime),
        optional(Integer64),
        optional(Unicode),
        returns=required(Integer64),
        names="Version",
    )
    def SetAttributes(
        ctx: Any, Attributes: Any, ApplyTime: str, ExpectedVersion: int | None,
        Password: str | None,
    ) -> int:
        call = call_of(ctx)
        return call.use(BiosService).set_attributes(
            call.principal, codec.decode_values(Attributes), DomainApplyTime(str(ApplyTime)),
            ExpectedVersion, Password,
        )

    @operation(
        returns=(required(Integer64), required(types.AttributeValueList)),
        names=("Version", "Attributes"),
    )
    def GetPendingAttributes(ctx: Any) -> tuple[int, Any]:
        call = call_of(ctx)
        view = call.use(BiosService).get_pending(call.principal)
        return view.version, codec.render_values(view.values)

    @operation(optional(Integer64), optional(Unicode), returns=required(Integer64), names="Version")
    def CancelPendingAttributes(ctx: Any, ExpectedVersion: int | None, Password: str | None) -> int:
        call = call_of(ctx)
        return call.use(BiosService).cancel_pending(call.principal, ExpectedVersion, Password)

    @operation(optional(Integer64), optional(Unicode), returns=required(Integer64), names="Version")
    def ResetAttributesToDefaults(
        ctx: Any, ExpectedVersion: int | None, Password: str | None
    ) -> int:
        call = call_of(ctx)
        return call.use(BiosService).reset_to_defaults(call.principal, ExpectedVersion, Password)

    @operation(
        required(Unicode),
        optional(Unicode),
        required(Unicode),
        optional(Integer64),
        optional(Unicode),
        returns=required(Integer64),
        names="Version",
    )
    def ChangePassword(
        ctx: Any, PasswordName: str, OldPassword: str | None, NewPassword: str,
        ExpectedVersion: int | None, Password: str | None,
    ) -> int:
        call = call_of(ctx)
        return call.use(BiosService).change_password(
            call.principal, PasswordName, OldPassword, NewPassword, ExpectedVersion, Password
        )
