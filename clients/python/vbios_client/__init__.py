"""Guest library for the bios-ws virtual trusted runtime BIOS.

    with BiosClient.from_bundle("https://vbios.local:8443/", "/etc/vbios/bundle") as bios:
        current = bios.get_attributes()
        bios.set_attributes({"BootTimeout": 10}, expected_version=current.version)

A guest without a bundle yet enrolls with the one-time URI its admin printed:

    bundle = enroll(uri, "/etc/vbios/bundle")   # its key is made here, never sent
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vbios_client.exceptions import (
    AccessDenied,
    AttestationUnavailable,
    BundleError,
    CaPinMismatch,
    CapsuleNotTrusted,
    CertificateMismatch,
    ChunkRefused,
    DomainExists,
    DomainNotFound,
    EnrollmentError,
    FaultError,
    FirmwareJobTimeout,
    FirmwareUpdateRefused,
    InternalError,
    InvalidAttributeValue,
    InvalidBootOrder,
    InvalidBootstrapUri,
    InvalidCapsule,
    InvalidPassword,
    InvalidPowerTransition,
    InvalidRequest,
    InvalidSecureBootChange,
    MachineError,
    MustUnderstand,
    PasswordRequired,
    PlatformUnavailable,
    ReadOnlyAttribute,
    RemoteUnavailable,
    ResetRequired,
    ServiceRestricted,
    StoreUnavailable,
    SubscriptionExpired,
    TpmError,
    TpmUnavailable,
    TransportError,
    UnknownAttribute,
    UnknownBootOption,
    UnknownFirmwareJob,
    UnknownRequestKind,
    UnknownSubscription,
    UnknownUpload,
    UpdateInProgress,
    VbiosClientError,
    VersionConflict,
    VersionMismatch,
    WatchdogNotArmed,
)
from vbios_client.models import (
    AttributeDefinition,
    AttributeRegistry,
    AttributeSet,
    BootConfig,
    BootOption,
    CachedAnswer,
    Event,
    EventBatch,
    EventSubscription,
    Fan,
    FirmwareChunk,
    FirmwareEntry,
    FirmwareJob,
    FirmwareUpload,
    FirmwareUploadStatus,
    IssuedBundle,
    PendingAttributes,
    PowerState,
    ProvisioningState,
    ResetOutcome,
    SecureBoot,
    SecureBootCertificate,
    SelEntry,
    Smbios,
    SystemEventLog,
    TemperatureSensor,
    Thermal,
    ThermalThreshold,
    WakeAlarm,
    Watchdog,
)

if TYPE_CHECKING:
    from vbios_client.client import BiosClient
    from vbios_client.enrollment import BootstrapUri, enroll, parse_bootstrap_uri

__version__ = "0.1.0"

#: Imported at first use: the client and enrollment bring requests, lxml and cryptography,
#: which a process that only parses arguments (``vbios-client --help``) never needs.
_LAZY = {
    "BiosClient": "vbios_client.client",
    "BootstrapUri": "vbios_client.enrollment",
    "enroll": "vbios_client.enrollment",
    "parse_bootstrap_uri": "vbios_client.enrollment",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})

__all__ = [
    "AccessDenied",
    "AttestationUnavailable",
    "AttributeDefinition",
    "AttributeRegistry",
    "AttributeSet",
    "BiosClient",
    "BootConfig",
    "BootOption",
    "BootstrapUri",
    "BundleError",
    "CaPinMismatch",
    "CachedAnswer",
    "CapsuleNotTrusted",
    "CertificateMismatch",
    "ChunkRefused",
    "DomainExists",
    "DomainNotFound",
    "EnrollmentError",
    "Event",
    "EventBatch",
    "EventSubscription",
    "Fan",
    "FaultError",
    "FirmwareChunk",
    "FirmwareEntry",
    "FirmwareJob",
    "FirmwareJobTimeout",
    "FirmwareUpdateRefused",
    "FirmwareUpload",
    "FirmwareUploadStatus",
    "InternalError",
    "InvalidAttributeValue",
    "InvalidBootOrder",
    "InvalidBootstrapUri",
    "InvalidCapsule",
    "InvalidPassword",
    "InvalidPowerTransition",
    "InvalidRequest",
    "InvalidSecureBootChange",
    "IssuedBundle",
    "MachineError",
    "MustUnderstand",
    "PasswordRequired",
    "PendingAttributes",
    "PlatformUnavailable",
    "PowerState",
    "ProvisioningState",
    "ReadOnlyAttribute",
    "RemoteUnavailable",
    "ResetOutcome",
    "ResetRequired",
    "SecureBoot",
    "SecureBootCertificate",
    "SelEntry",
    "ServiceRestricted",
    "Smbios",
    "StoreUnavailable",
    "SubscriptionExpired",
    "SystemEventLog",
    "TemperatureSensor",
    "Thermal",
    "ThermalThreshold",
    "TpmError",
    "TpmUnavailable",
    "TransportError",
    "UnknownAttribute",
    "UnknownBootOption",
    "UnknownFirmwareJob",
    "UnknownRequestKind",
    "UnknownSubscription",
    "UnknownUpload",
    "UpdateInProgress",
    "VbiosClientError",
    "VersionConflict",
    "VersionMismatch",
    "WakeAlarm",
    "Watchdog",
    "WatchdogNotArmed",
    "__version__",
    "enroll",
    "parse_bootstrap_uri",
]
