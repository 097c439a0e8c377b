"""Secure Boot operations: a guest's own switch, keys and databases; the admin's
certificates, naming a domain."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from spyne import Boolean, Integer64, Service, Unicode

from bios_ws.service import secureboot as model
from bios_ws.service.secureboot import SecureBootService
from bios_ws.soap.attestation_codec import iso
from bios_ws.soap.context import call_of
from bios_ws.soap.secureboot_types import (
    DatabaseName,
    ResetKeysTypeType,
    SecureBootCurrentType,
    SecureBootDatabaseList,
    SecureBootModeType,
)
from bios_ws.soap.settings_service import SERVICE_NAME
from bios_ws.soap.types import operation, optional, required

_VERSION = {"returns": required(Integer64), "names": "Version"}


class SecureBootSoapService(Service):  # type: ignore[misc]
    __service_name__ = SERVICE_NAME

    @operation(returns=(required(Boolean), required(SecureBootCurrentType),
                        required(SecureBootModeType), optional(Boolean)),
               names=("Enabled", "CurrentBoot", "Mode", "PendingEnabled"))
    def GetSecureBoot(ctx: Any) -> tuple[Any, ...]:
        call = call_of(ctx)
        view = call.use(SecureBootService).get(call.principal)
        return view.enabled, view.current_boot.value, view.mode, view.pending_enabled

    @operation(required(Boolean), optional(Integer64), optional(Unicode), **_VERSION)
    def SetSecureBoot(ctx: Any, Enabled: bool, ExpectedVersion: int | None,
                      Password: str | None) -> int:
        call = call_of(ctx)
        return call.use(SecureBootService).set_enabled(call.principal, bool(Enabled),
                                                       ExpectedVersion, Password)

    @operation(required(ResetKeysTypeType), optional(Integer64), optional(Unicode),
               **_VERSION)
    def ResetSecureBootKeys(ctx: Any, ResetKeysType: str, ExpectedVersion: int | None,
                            Password: str | None) -> int:
        call = call_of(ctx)
        return call.use(SecureBootService).reset_keys(
            call.principal, model.ResetKeysType(str(ResetKeysType)), ExpectedVersion, Password)

    @operation(returns=required(SecureBootDatabaseList), names="Databases")
    def GetSecureBootDatabases(ctx: Any) -> Any:
        call = call_of(ctx)
        found = call.use(SecureBootService).databases(call.principal)
        return SimpleNamespace(Database=[
            SimpleNamespace(Name=name, Certificates=SimpleNamespace(Certificate=[
                SimpleNamespace(Subject=c.subject, Issuer=c.issuer,
                                NotAfter=iso(c.not_after), Sha256=c.sha256)
                for c in certificates]))
            for name, certificates in found.items()])

    @operation(required(Unicode), required(DatabaseName), required(Unicode), **_VERSION)
    def AddSecureBootCertificate(ctx: Any, Domain: str, Database: str,
                                 Certificate: str) -> int:
        call = call_of(ctx)
        return call.use(SecureBootService).add_certificate(call.principal, Domain,
                                                           str(Database), Certificate)

    @operation(required(Unicode), required(DatabaseName), required(Unicode), **_VERSION)
    def RemoveSecureBootCertificate(ctx: Any, Domain: str, Database: str,
                                    Sha256: str) -> int:
        call = call_of(ctx)
        return call.use(SecureBootService).remove_certificate(call.principal, Domain,
                                                              str(Database), Sha256)
