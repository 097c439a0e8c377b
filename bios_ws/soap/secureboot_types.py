"""The Secure Boot contract's types."""

from __future__ import annotations

from spyne import ComplexModel, Enum, Unicode

from bios_ws.domain.firmware import DATABASES, SecureBootCurrent
from bios_ws.service.secureboot import ResetKeysType
from bios_ws.soap.types import TNS, repeated, required

SecureBootCurrentType = Enum(*(c.value for c in SecureBootCurrent),
                             type_name="SecureBootCurrentBoot").customize(__namespace__=TNS)
SecureBootModeType = Enum("SetupMode", "UserMode", "AuditMode", "DeployedMode",
                          type_name="SecureBootMode").customize(__namespace__=TNS)
ResetKeysTypeType = Enum(*(t.value for t in ResetKeysType),
                         type_name="ResetKeysType").customize(__namespace__=TNS)
DatabaseName = Enum(*DATABASES, type_name="SecureBootDatabaseName").customize(
    __namespace__=TNS)


class SecureBootCertificate(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [
        ("Subject", required(Unicode)),
        ("Issuer", required(Unicode)),
        ("NotAfter", required(Unicode)),
        ("Sha256", required(Unicode)),
    ]


class SecureBootCertificateList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("Certificate", repeated(SecureBootCertificate))]


class SecureBootDatabase(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [
        ("Name", required(DatabaseName)),
        ("Certificates", required(SecureBootCertificateList)),
    ]


class SecureBootDatabaseList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("Database", repeated(SecureBootDatabase))]
