"""Who may call each operation of the contract, declared in one place.

The callers are the roles of ``bios_ws.domain.principal.Role``: a ``guest`` (a guest
certificate: it acts on its own domain), the ``admin`` (the admin certificate: it names
the domain) and an ``anonymous`` caller (no client certificate at all).

The guard in front of the Spyne application lets an anonymous caller reach only the
operations this table opens to it (``anonymous_operations``). Guests and the admin are
told apart by the use cases themselves (``Principal.own_domain``,
``Principal.require_admin``); ``tests/integration/test_soap_callers.py`` calls every
operation of the WSDL as each caller and checks that this table says what they do.
``docs/operations.md`` publishes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from bios_ws.domain.principal import Role

Callers = frozenset[Role]

GUEST: Final[Callers] = frozenset({Role.GUEST})
ADMIN: Final[Callers] = frozenset({Role.ADMIN})
GUEST_OR_ADMIN: Final[Callers] = frozenset({Role.GUEST, Role.ADMIN})
#: Whoever holds a bootstrap URI's ticket: the ticket, not the certificate, authorizes.
TICKET_HOLDER: Final[Callers] = frozenset({Role.ANONYMOUS, Role.GUEST, Role.ADMIN})

CALLERS: Final[Mapping[str, Callers]] = MappingProxyType({
    # enrollment
    "Enroll": TICKET_HOLDER,
    "RenewCertificate": GUEST,
    "GetProvisioningState": GUEST,
    # settings and boot, on the caller's own domain
    "GetAttributeRegistry": GUEST,
    "GetAttributes": GUEST,
    "SetAttributes": GUEST,
    "GetPendingAttributes": GUEST,
    "CancelPendingAttributes": GUEST,
    "ResetAttributesToDefaults": GUEST,
    "ChangePassword": GUEST,
    "GetBootOrder": GUEST,
    "SetBootOrder": GUEST,
    "SetBootNext": GUEST,
    "ApplyPendingAttributes": ADMIN,
    # power
    "GetPowerState": GUEST,
    "Reset": GUEST,
    "GetDomainPowerState": ADMIN,
    "ResetDomain": ADMIN,
    # Secure Boot
    "GetSecureBoot": GUEST,
    "SetSecureBoot": GUEST,
    "ResetSecureBootKeys": GUEST,
    "GetSecureBootDatabases": GUEST,
    "AddSecureBootCertificate": ADMIN,
    "RemoveSecureBootCertificate": ADMIN,
    # attestation: the host's state, the same for every caller
    "GetBootMeasurements": GUEST_OR_ADMIN,
    "GetQuote": GUEST_OR_ADMIN,
    "GetIntegrityStatus": GUEST_OR_ADMIN,
    "GetReferenceMeasurements": GUEST_OR_ADMIN,
    "CollectDiagnostics": GUEST_OR_ADMIN,
    "SetReferenceMeasurements": ADMIN,
    # firmware update: a guest its own domain's, the admin any (an upload or a job by id)
    "GetFirmwareInventory": GUEST,
    "GetFirmwareHistory": GUEST,
    "BeginFirmwareUpload": GUEST,
    "UploadFirmwareChunk": GUEST_OR_ADMIN,
    "GetFirmwareUpload": GUEST_OR_ADMIN,
    "CommitFirmwareUpload": GUEST_OR_ADMIN,
    "GetFirmwareJob": GUEST_OR_ADMIN,
    "GetDomainFirmwareInventory": ADMIN,
    "GetDomainFirmwareHistory": ADMIN,
    "BeginDomainFirmwareUpload": ADMIN,
    # system management: a guest its own domain's, the admin any domain's, naming it
    "GetSmbios": GUEST,
    "GetSystemEventLog": GUEST,
    "ClearSystemEventLog": GUEST,
    "GetWakeAlarm": GUEST,
    "SetWakeAlarm": GUEST,
    "ClearWakeAlarm": GUEST,
    "GetWatchdog": GUEST,
    "SetWatchdog": GUEST,
    "PetWatchdog": GUEST,
    "GetDomainSmbios": ADMIN,
    "GetDomainSystemEventLog": ADMIN,
    "ClearDomainSystemEventLog": ADMIN,
    "SetDomainSystemEventLogPolicy": ADMIN,
    "GetDomainWakeAlarm": ADMIN,
    "SetDomainWakeAlarm": ADMIN,
    "ClearDomainWakeAlarm": ADMIN,
    "GetDomainWatchdog": ADMIN,
    "SetDomainWatchdog": ADMIN,
    # thermal: a guest its own domain's readings; the admin any domain's, and its policy
    "GetThermal": GUEST,
    "GetDomainThermal": ADMIN,
    "SetThermalThresholds": ADMIN,
    "OverrideSensor": ADMIN,
    # events: a guest subscribes to its own domain's (and host-wide) events, the admin to
    # one domain's or every domain's; a subscription is its owner's alone
    "Subscribe": GUEST_OR_ADMIN,
    "GetEvents": GUEST_OR_ADMIN,
    "Renew": GUEST_OR_ADMIN,
    "Unsubscribe": GUEST_OR_ADMIN,
})

#: The order roles are listed in (documents, messages).
ROLE_ORDER: Final[tuple[Role, ...]] = (Role.GUEST, Role.ADMIN, Role.ANONYMOUS)


def callers_of(operation: str) -> Callers:
    """Who may call ``operation`` (KeyError: the table does not know it)."""
    return CALLERS[operation]


def anonymous_operations() -> frozenset[str]:
    """The operations a caller without a client certificate may call."""
    return frozenset(name for name, callers in CALLERS.items() if Role.ANONYMOUS in callers)


def describe(callers: Callers) -> str:
    """``guest, admin``: the callers in ``ROLE_ORDER``."""
    return ", ".join(role.value for role in ROLE_ORDER if role in callers)
