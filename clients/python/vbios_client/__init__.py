"""Guest library for the bios-ws virtual trusted runtime BIOS.

    with BiosClient.from_bundle("https://vbios.local:8443/", "/etc/vbios/bundle") as bios:
        current = bios.get_attributes()
        bios.set_attributes({"BootTimeout": 10}, expected_version=current.version)
"""

from vbios_client.client import BiosClient
from vbios_client.exceptions import (
    AccessDenied,
    AttestationUnavailable,
    DomainExists,
    DomainNotFound,
    FaultError,
    InternalError,
    InvalidAttributeValue,
    InvalidBootOrder,
    InvalidPassword,
    InvalidPowerTransition,
    InvalidRequest,
    MachineError,
    MustUnderstand,
    PasswordRequired,
    PlatformUnavailable,
    ReadOnlyAttribute,
    ResetRequired,
    ServiceRestricted,
    StoreUnavailable,
    TpmError,
    TpmUnavailable,
    TransportError,
    UnknownAttribute,
    UnknownBootOption,
    VbiosClientError,
    VersionConflict,
    VersionMismatch,
)
from vbios_client.models import (
    AttributeDefinition,
    AttributeRegistry,
    AttributeSet,
    BootConfig,
    BootOption,
    PendingAttributes,
    PowerState,
    ResetOutcome,
)

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "AttestationUnavailable",
    "AttributeDefinition",
    "AttributeRegistry",
    "AttributeSet",
    "BiosClient",
    "BootConfig",
    "BootOption",
    "DomainExists",
    "DomainNotFound",
    "FaultError",
    "InternalError",
    "InvalidAttributeValue",
    "InvalidBootOrder",
    "InvalidPassword",
    "InvalidPowerTransition",
    "InvalidRequest",
    "MachineError",
    "MustUnderstand",
    "PasswordRequired",
    "PendingAttributes",
    "PlatformUnavailable",
    "PowerState",
    "ReadOnlyAttribute",
    "ResetOutcome",
    "ResetRequired",
    "ServiceRestricted",
    "StoreUnavailable",
    "TpmError",
    "TpmUnavailable",
    "TransportError",
    "UnknownAttribute",
    "UnknownBootOption",
    "VbiosClientError",
    "VersionConflict",
    "VersionMismatch",
    "__version__",
]
