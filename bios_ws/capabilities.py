"""Every capability of the vBIOS, registered in one place.

A capability is one domain module, one use-case module, one SOAP service
module, and one ``Capability`` entry in ``CAPABILITIES`` below: how to build its
use case from the shared parts (``Wiring``), which Spyne service classes carry
its operations (their types come with them), and which faults those operations
may raise. ``bios_ws.bootstrap`` builds the use cases in this order (a later
one may use an earlier one); the SOAP layer builds its one application from
the services named here. Adding a capability edits no other list:
``docs/architecture.md`` walks through it with power management.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from bios_ws.errors import (
    AccessDenied,
    AttestationUnavailable,
    CapsuleNotTrusted,
    ChunkRefused,
    DomainExists,
    DomainNotFound,
    FirmwareUpdateRefused,
    InternalError,
    InvalidAttributeValue,
    InvalidBootOrder,
    InvalidCapsule,
    InvalidPassword,
    InvalidPowerTransition,
    InvalidRequest,
    InvalidSecureBootChange,
    MachineError,
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
    UnknownAttribute,
    UnknownBootOption,
    UnknownFirmwareJob,
    UnknownRequestKind,
    UnknownSubscription,
    UnknownUpload,
    UpdateInProgress,
    VbiosError,
    VersionConflict,
    WatchdogNotArmed,
)
from bios_ws.service.attestation import AttestationService
from bios_ws.service.bios import BiosService
from bios_ws.service.credentials import CredentialService
from bios_ws.service.delegates import DelegateService
from bios_ws.service.domains import DomainService
from bios_ws.service.enrollment import EnrollmentService
from bios_ws.service.event_subscriptions import EventService
from bios_ws.service.firmware_trust import FirmwareTrustService
from bios_ws.service.firmware_update import FirmwareUpdateService, restart_for_update
from bios_ws.service.firmware_upload import FirmwareUploadService
from bios_ws.service.hosts import HostService
from bios_ws.service.power import PowerService
from bios_ws.service.routing import RoutingService
from bios_ws.service.secureboot import SecureBootService
from bios_ws.service.system_management import SystemManagementService
from bios_ws.service.thermal import ThermalService
from bios_ws.service.use_cases import UseCases
from bios_ws.wiring import TpmParts, Wiring

__all__ = ["CAPABILITIES", "Capability", "TpmParts", "Wiring", "build_use_cases"]


@dataclass(frozen=True)
class Capability:
    name: str
    #: Builds the capability's use case (None: it has none of its own).
    build: Callable[[Wiring], object] | None
    #: Its Spyne service classes, as "module:Class" (imported by the SOAP layer only).
    soap_services: tuple[str, ...] = ()
    #: The contract errors its operations may raise (each becomes a typed fault).
    faults: tuple[type[VbiosError], ...] = ()
    #: Its operations that only read the local store and compute: a worker runs them on
    #: its event loop thread (see ``bios_ws.blocking``). Others run on a pool thread.
    loop_safe: tuple[str, ...] = ()
    #: Its other operations that change nothing (the ``loop_safe`` ones change nothing
    #: either): forwarded to a remote, such a read may be sent again after a lost
    #: answer, and answered from the route's cache (``server.forwarding``).
    reads: tuple[str, ...] = ()
    #: Why its guest operations are always served by this installation, never routed to a
    #: remote vBIOS (``docs/routing.md``); None: routable if it has guest operations.
    stays_local: str | None = None
    #: The capability whose route its operations follow (their state is that one's).
    routes_with: str | None = None
    #: Its admin operations that act on one domain's routed state (the request's Domain):
    #: for a domain routed elsewhere, this host, its platform, forwards the admin's call
    #: to the remote as the platform (``server.forwarding``, ``docs/routing.md``).
    platform: tuple[str, ...] = ()

    @property
    def routable(self) -> bool:
        return self.stays_local is None and bool(self.soap_services)

    @property
    def routing_key(self) -> str:
        """The capability whose route decides where its guest operations go."""
        return self.routes_with or self.name

    def why_local(self) -> str:
        """Why ``vbios route set`` refuses this capability (it is not ``routable``)."""
        if self.stays_local is not None:
            return self.stays_local
        return "it serves no guest operation (the admin's command line only)"

    def services(self) -> list[Any]:
        """The Spyne service classes (imports the SOAP modules)."""
        found = []
        for path in self.soap_services:
            module, _, name = path.partition(":")
            found.append(getattr(importlib.import_module(module), name))
        return found


#: Why a capability that acts on the domain's machine is served by this host.
_MACHINE = "machines stay where they run (the domain's machine runs on this host): "


def _settings(wiring: Wiring) -> BiosService:
    return BiosService(wiring.uow, wiring.registry, wiring.clock, gate=wiring.gate)


def _credentials(wiring: Wiring) -> CredentialService:
    return CredentialService(wiring.uow, wiring.issuer, wiring.clock,
                             guest_validity=wiring.guest_validity, host=wiring.host)


def _enrollment(wiring: Wiring) -> EnrollmentService:
    return EnrollmentService(wiring.uow, wiring.built.use(CredentialService),
                             wiring.built.use(DomainService), wiring.clock)


def _domains(wiring: Wiring) -> DomainService:
    return DomainService(wiring.uow, wiring.registry, wiring.platforms, wiring.clock,
                         wiring.default_keys,
                         publish_revocations=wiring.built.use(CredentialService)
                         .publish_revocations, host=wiring.host)


def _secure_boot(wiring: Wiring) -> SecureBootService:
    return SecureBootService(wiring.uow, wiring.built.use(BiosService), wiring.default_keys)


def _power(wiring: Wiring) -> PowerService:
    return PowerService(wiring.uow, wiring.clock, wiring.platforms,
                        wiring.built.use(BiosService), wiring.gate, turns=wiring.turns,
                        host=wiring.host, settings=wiring.boot_settings)


def _attestation(wiring: Wiring) -> AttestationService:
    tpm = wiring.tpm
    if tpm is None:
        return AttestationService(wiring.uow, wiring.clock, monitor=None, tpm_access=None,
                                  read_log=lambda: None, ak_certificate=lambda: None,
                                  host=wiring.host)
    return AttestationService(wiring.uow, wiring.clock, monitor=tpm.monitor,
                              tpm_access=tpm.access, read_log=tpm.read_log,
                              ak_certificate=tpm.ak_certificate,
                              read_served_log=tpm.read_served_log, host=wiring.host)


def _firmware(wiring: Wiring) -> FirmwareTrustService:
    return FirmwareTrustService(wiring.uow, wiring.clock)


def _firmware_update(wiring: Wiring) -> FirmwareUpdateService:
    from bios_ws.firmware import Pkcs7CapsuleVerifier

    return FirmwareUpdateService(wiring.uow, wiring.clock, wiring.platforms,
                                 Pkcs7CapsuleVerifier(),
                                 restart_for_update(wiring.built.use(PowerService)),
                                 gate=wiring.gate, turns=wiring.turns, host=wiring.host)


def _firmware_upload(wiring: Wiring) -> FirmwareUploadService:
    return FirmwareUploadService(wiring.uow, wiring.clock,
                                 wiring.built.use(FirmwareUpdateService),
                                 wiring.transfer_key, gate=wiring.gate)


def _system_management(wiring: Wiring) -> SystemManagementService:
    return SystemManagementService(wiring.uow, wiring.clock, wiring.registry,
                                   wiring.built.use(PowerService), gate=wiring.gate,
                                   settings=wiring.boot_settings)


def _thermal(wiring: Wiring) -> ThermalService:
    return ThermalService(wiring.uow, wiring.clock, wiring.platforms,
                          wiring.built.use(BiosService), wiring.built.use(PowerService),
                          alerts=wiring.thermal_alerts, ambient=wiring.ambient,
                          gate=wiring.gate, setting=None if wiring.boot_settings is None
                          else wiring.boot_settings.setting)


def _routing(wiring: Wiring) -> RoutingService:
    return RoutingService(wiring.uow, wiring.clock,
                          {c.name: None if c.routable else c.why_local() for c in CAPABILITIES},
                          host=wiring.host)


def _events(wiring: Wiring) -> EventService:
    return EventService(wiring.uow, wiring.clock, wiring.event_retention)


#: Faults any operation may raise.
COMMON_FAULTS: tuple[type[VbiosError], ...] = (
    InvalidRequest, AccessDenied, DomainNotFound, InternalError, StoreUnavailable,
    ServiceRestricted, RemoteUnavailable,  # any guest operation of a routed capability
)

CAPABILITIES: tuple[Capability, ...] = (
    Capability("credentials", _credentials),
    Capability("hosts", lambda wiring: HostService(wiring.uow, wiring.clock)),
    Capability("delegate hosts", lambda wiring: DelegateService(
        wiring.uow, wiring.built.use(CredentialService), wiring.clock)),
    Capability(
        "domains", _domains, faults=(DomainExists,),
    ),
    Capability(
        "enrollment", _enrollment,
        soap_services=("bios_ws.soap.enrollment_service:EnrollmentSoapService",),
        stays_local="a guest's certificate is issued by the CA of the host that runs its"
                    " domain, and it is the identity this host forwards on behalf of",
    ),
    Capability(
        "settings", _settings,
        soap_services=("bios_ws.soap.settings_service:SettingsService",
                       "bios_ws.soap.boot_service:BootService",
                       "bios_ws.soap.admin_service:AdminService"),
        faults=(UnknownAttribute, InvalidAttributeValue, ReadOnlyAttribute, ResetRequired,
                PasswordRequired, InvalidPassword, VersionConflict, InvalidBootOrder,
                UnknownBootOption),
        loop_safe=("GetAttributeRegistry", "GetAttributes", "GetPendingAttributes",
                   "GetBootOrder"),
        platform=("ApplyPendingAttributes",),
    ),
    Capability(
        "power", _power,
        soap_services=("bios_ws.soap.power_service:PowerSoapService",),
        faults=(InvalidPowerTransition, PlatformUnavailable, MachineError),
        stays_local=_MACHINE + "power requests start, stop and reset it",
    ),
    Capability(
        "secure boot", _secure_boot,
        soap_services=("bios_ws.soap.secureboot_service:SecureBootSoapService",),
        faults=(InvalidSecureBootChange,),
        stays_local="its mode and keys are part of the domain's settings state (one version,"
                    " applied at boot): they go where settings go (vbios route set settings)",
        routes_with="settings",
        reads=("GetSecureBoot", "GetSecureBootDatabases"),
        platform=("AddSecureBootCertificate", "RemoveSecureBootCertificate"),
    ),
    Capability(
        "attestation", _attestation,
        soap_services=("bios_ws.soap.attestation_service:AttestationSoapService",),
        faults=(AttestationUnavailable, TpmError, TpmUnavailable),
        stays_local="the quote and the boot measurements are of this host's own TPM: the"
                    " host the guest runs on is what a guest attests",
    ),
    Capability("firmware", _firmware),  # the admin's trusted capsule signers (CLI only)
    Capability(
        "firmware update", _firmware_update,
        soap_services=("bios_ws.soap.firmware_service:FirmwareSoapService",),
        faults=(InvalidCapsule, CapsuleNotTrusted, FirmwareUpdateRefused, UpdateInProgress,
                UnknownFirmwareJob, PlatformUnavailable, MachineError),
        stays_local=_MACHINE + "a capsule is applied to its firmware at reset",
    ),
    Capability(
        "firmware upload", _firmware_upload,
        soap_services=("bios_ws.soap.firmware_upload_service:FirmwareUploadSoapService",),
        faults=(UnknownUpload, ChunkRefused),
        stays_local="an upload feeds a firmware update, which stays local",
    ),
    Capability(
        "system management", _system_management,
        soap_services=("bios_ws.soap.sm_service:SystemManagementSoapService",),
        faults=(UnknownRequestKind, WatchdogNotArmed, VersionConflict),
        loop_safe=("GetSmbios", "GetSystemEventLog", "GetWakeAlarm", "GetWatchdog"),
        stays_local=_MACHINE + "its watchdog, wake alarm, SMBIOS tables and System Event Log"
                              " are the machine's",
    ),
    Capability(
        "thermal", _thermal,
        soap_services=("bios_ws.soap.thermal_service:ThermalSoapService",),
        faults=(VersionConflict, PlatformUnavailable, MachineError),
        stays_local=_MACHINE + "its sensors, fans and thermal policy are the machine's",
    ),
    Capability(
        "events", _events,
        soap_services=("bios_ws.soap.events_service:EventsSoapService",),
        faults=(UnknownSubscription, SubscriptionExpired),
        loop_safe=("GetEvents",),
    ),
    # which installation serves each guest capability (docs/routing.md; CLI only)
    Capability("routing", _routing),
)


def fault_classes() -> dict[str, type[VbiosError]]:
    """Every error class whose code can appear in a fault, by code."""
    classes = [*COMMON_FAULTS, *(f for c in CAPABILITIES for f in c.faults)]
    return {cls.code: cls for cls in classes}


def capability_named(name: str) -> Capability | None:
    """The registered capability called ``name`` ('-' may stand for a space), or None."""
    wanted = name.strip().lower().replace("-", " ")
    return next((c for c in CAPABILITIES if c.name == wanted), None)


def routable_capabilities() -> tuple[str, ...]:
    """The capabilities a host may route to a remote vBIOS, in registration order."""
    return tuple(c.name for c in CAPABILITIES if c.routable)


@functools.cache
def operation_capabilities() -> Mapping[str, str]:
    """Each operation of the contract -> the capability that serves it (imports the SOAP
    modules: read from their Spyne service classes, not a second list)."""
    found: dict[str, str] = {}
    for capability in CAPABILITIES:
        for service in capability.services():
            for operation in service.public_methods:
                found[str(operation)] = capability.routing_key
    return MappingProxyType(found)


def loop_safe_operations() -> frozenset[str]:
    """The operations a worker may run on its event loop thread."""
    return frozenset(name for c in CAPABILITIES for name in c.loop_safe)


def read_operations() -> frozenset[str]:
    """The operations that change nothing (``Capability.reads`` and ``loop_safe``): the
    only ones a forwarded call may send twice or answer from a route's cache."""
    return frozenset(name for c in CAPABILITIES for name in (*c.loop_safe, *c.reads))


def platform_operations() -> frozenset[str]:
    """The admin operations a routed domain's platform forwards to its remote
    (``Capability.platform``)."""
    return frozenset(name for c in CAPABILITIES for name in c.platform)


def build_use_cases(wiring: Wiring) -> UseCases:
    """One use case per registered capability, in order."""
    built = wiring.built
    for capability in CAPABILITIES:
        if capability.build is not None:
            built = built.with_(capability.build(dataclasses.replace(wiring, built=built)))
    return built
