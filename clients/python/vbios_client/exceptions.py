"""Every error the vBIOS client raises.

    VbiosClientError                base of everything raised here
    ├── FaultError                  the service refused: code, message, attribute, correlation_id
    │   ├── InvalidRequest          ┐
    │   ├── AccessDenied            │
    │   ├── DomainNotFound          │
    │   ├── DomainExists            │
    │   ├── UnknownAttribute        │ one class per fault code of the contract
    │   ├── InvalidAttributeValue   │ (docs/contract.md, "Fault codes");
    │   ├── ReadOnlyAttribute       │ a code this library does not know
    │   ├── ResetRequired           │ raises FaultError itself
    │   ├── PasswordRequired        │
    │   ├── InvalidPassword         │
    │   ├── VersionConflict         │
    │   ├── InvalidBootOrder        │
    │   ├── UnknownBootOption       │
    │   ├── InvalidPowerTransition  │ (attribute: the power state it made no sense in)
    │   ├── InvalidSecureBootChange │ (attribute: the Secure Boot database)
    │   ├── InternalError           │ (carries correlation_id)
    │   ├── StoreUnavailable        │
    │   ├── ServiceRestricted       │ (the host is Untrusted: writes refused)
    │   ├── AttestationUnavailable  │ (no TPM or attestation key on the host)
    │   ├── PlatformUnavailable     │ (the host lacks the machine's software: QEMU, OVMF)
    │   ├── MachineError            │ (the domain's machine failed)
    │   ├── RemoteUnavailable       │ (the remote vBIOS serving this call for the host
    │   │                           │  is down, slow or refusing)
    │   ├── TpmError                │ (the host's TPM refused)
    │   ├── TpmUnavailable          │ (the host's TPM is unreachable)
    │   ├── InvalidCapsule          │ (attribute: the capsule field that is malformed)
    │   ├── CapsuleNotTrusted       │ (the capsule's signature does not verify)
    │   ├── FirmwareUpdateRefused   │ (attribute: FwVersion, MonotonicCount or
    │   │                           │  UpdateImageTypeId, the field that decided)
    │   ├── UpdateInProgress        │ (one update of a domain at a time)
    │   ├── UnknownFirmwareJob      │
    │   ├── UnknownUpload           │ (never begun, committed, expired, or another's)
    │   ├── ChunkRefused            │ (attribute: Offset, Data or Sha256)
    │   ├── UnknownRequestKind      │ (a system-management request the vBIOS does not know)
    │   ├── WatchdogNotArmed        │ (a pet of a watchdog that is not armed)
    │   ├── UnknownSubscription     │ (no event subscription of this caller has the id)
    │   ├── SubscriptionExpired     ┘ (subscribe again; a cursor still reads on)
    │   ├── VersionMismatch         SOAP 1.1 envelope faults
    │   └── MustUnderstand
    ├── TransportError              connection refused, TLS failure, timeout, or an
    │                               answer that is not a readable SOAP message
    ├── FirmwareJobTimeout          a firmware job had not ended when the wait gave up
    │                               (also a TimeoutError; ``job``: its last state seen)
    └── EnrollmentError             enrolling or renewing stopped here, in the guest
        ├── InvalidBootstrapUri     the bootstrap URI is malformed (also a ValueError)
        ├── CaPinMismatch           the server's CA is not the one the URI pins: nothing
        │                           was sent to it
        ├── CertificateMismatch     the certificate returned is not for the key made
        │                           here, not for this domain, or not from the pinned CA
        └── BundleError             the bundle directory cannot be used or written
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vbios_client.models import FirmwareJob


class VbiosClientError(Exception):
    """Base of every error raised by vbios_client."""


class FaultError(VbiosClientError):
    """The service answered with a SOAP fault."""

    #: The fault code this class stands for; instances carry the code received.
    code: str = ""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        attribute: str | None = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or type(self).code or "Fault"
        self.attribute = attribute
        self.correlation_id = correlation_id

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class InvalidRequest(FaultError):
    code = "InvalidRequest"


class AccessDenied(FaultError):
    code = "AccessDenied"


class DomainNotFound(FaultError):
    code = "DomainNotFound"


class DomainExists(FaultError):
    code = "DomainExists"


class UnknownAttribute(FaultError):
    code = "UnknownAttribute"


class InvalidAttributeValue(FaultError):
    code = "InvalidAttributeValue"


class ReadOnlyAttribute(FaultError):
    code = "ReadOnlyAttribute"


class ResetRequired(FaultError):
    code = "ResetRequired"


class PasswordRequired(FaultError):
    code = "PasswordRequired"


class InvalidPassword(FaultError):
    code = "InvalidPassword"


class VersionConflict(FaultError):
    code = "VersionConflict"


class InvalidBootOrder(FaultError):
    code = "InvalidBootOrder"


class UnknownBootOption(FaultError):
    code = "UnknownBootOption"


class InvalidPowerTransition(FaultError):
    """A power request that makes no sense in the domain's state (``attribute``: the state)."""

    code = "InvalidPowerTransition"


class InvalidSecureBootChange(FaultError):
    code = "InvalidSecureBootChange"


class InternalError(FaultError):
    code = "InternalError"


class StoreUnavailable(FaultError):
    code = "StoreUnavailable"


class ServiceRestricted(FaultError):
    """The host's measurements do not match its reference: it refuses state changes."""

    code = "ServiceRestricted"


class AttestationUnavailable(FaultError):
    code = "AttestationUnavailable"


class PlatformUnavailable(FaultError):
    code = "PlatformUnavailable"


class MachineError(FaultError):
    code = "MachineError"


class RemoteUnavailable(FaultError):
    code = "RemoteUnavailable"


class TpmError(FaultError):
    code = "TpmError"


class TpmUnavailable(FaultError):
    code = "TpmUnavailable"


class InvalidCapsule(FaultError):
    """The capsule is malformed; ``attribute`` names the field."""

    code = "InvalidCapsule"


class CapsuleNotTrusted(FaultError):
    """The capsule's signature does not verify against the signers the admin trusts."""

    code = "CapsuleNotTrusted"


class FirmwareUpdateRefused(FaultError):
    """A verified capsule the update rules refuse; ``attribute`` names the field that
    decided: FwVersion (below the floor), MonotonicCount (not greater than the last
    one accepted) or UpdateImageTypeId (no such firmware here)."""

    code = "FirmwareUpdateRefused"


class UpdateInProgress(FaultError):
    """The domain has an update that has not ended; one runs at a time."""

    code = "UpdateInProgress"


class UnknownFirmwareJob(FaultError):
    code = "UnknownFirmwareJob"


class UnknownUpload(FaultError):
    """No open upload of this caller has the id (never begun, committed or expired)."""

    code = "UnknownUpload"


class ChunkRefused(FaultError):
    """A chunk (or the commit of an upload) is refused; ``attribute`` names the field:
    Offset (not the next offset), Data or Sha256. The upload is as it was, except at a
    commit whose whole does not check (then it is discarded)."""

    code = "ChunkRefused"


class UnknownRequestKind(FaultError):
    """A system-management request of a kind the vBIOS does not handle."""

    code = "UnknownRequestKind"


class WatchdogNotArmed(FaultError):
    """A pet of the domain's watchdog while it is not armed (``set_watchdog`` arms it)."""

    code = "WatchdogNotArmed"


class UnknownSubscription(FaultError):
    """No event subscription of this caller has the id (never made, ended, long expired)."""

    code = "UnknownSubscription"


class SubscriptionExpired(FaultError):
    """The event subscription expired: subscribe again (a cursor still reads from where
    it was)."""

    code = "SubscriptionExpired"


class VersionMismatch(FaultError):
    code = "VersionMismatch"


class MustUnderstand(FaultError):
    code = "MustUnderstand"


class TransportError(VbiosClientError):
    """The service could not be reached: connection, TLS, timeout, or an unreadable answer."""


class FirmwareJobTimeout(VbiosClientError, TimeoutError):
    """``BiosClient.wait_for_firmware_job`` gave up before the job ended; ``job`` is the
    job as last seen (a ``FirmwareJob``), which goes on on the vBIOS's side."""

    def __init__(self, message: str, job: FirmwareJob) -> None:
        super().__init__(message)
        self.job = job


class EnrollmentError(VbiosClientError):
    """Enrolling or renewing a certificate stopped on the guest's side."""


class InvalidBootstrapUri(EnrollmentError, ValueError):
    """The bootstrap URI is malformed: the message names what is wrong."""


class CaPinMismatch(EnrollmentError):
    """The server's CA certificate is not the one the bootstrap URI pins.

    Nothing was sent to that server after fetching its CA certificate."""


class CertificateMismatch(EnrollmentError):
    """The certificate the server returned is not for the key made here, does not name
    this domain, or was not issued by the pinned CA: nothing was written."""


class BundleError(EnrollmentError):
    """The bundle directory cannot be used (it exists and is not empty, is not a
    directory) or cannot be written."""


FAULT_CLASSES: dict[str, type[FaultError]] = {
    cls.code: cls
    for cls in (
        InvalidRequest,
        AccessDenied,
        DomainNotFound,
        DomainExists,
        UnknownAttribute,
        InvalidAttributeValue,
        ReadOnlyAttribute,
        ResetRequired,
        PasswordRequired,
        InvalidPassword,
        VersionConflict,
        InvalidBootOrder,
        UnknownBootOption,
        InvalidPowerTransition,
        InvalidSecureBootChange,
        InternalError,
        StoreUnavailable,
        ServiceRestricted,
        AttestationUnavailable,
        PlatformUnavailable,
        MachineError,
        RemoteUnavailable,
        TpmError,
        TpmUnavailable,
        InvalidCapsule,
        CapsuleNotTrusted,
        FirmwareUpdateRefused,
        UpdateInProgress,
        UnknownFirmwareJob,
        UnknownUpload,
        ChunkRefused,
        UnknownRequestKind,
        WatchdogNotArmed,
        UnknownSubscription,
        SubscriptionExpired,
        VersionMismatch,
        MustUnderstand,
    )
}


def fault_from_code(
    code: str,
    message: str,
    *,
    attribute: str | None = None,
    correlation_id: str | None = None,
) -> FaultError:
    """The exception for a fault code; an unknown code gives a plain FaultError."""
    cls = FAULT_CLASSES.get(code, FaultError)
    return cls(message, code=code, attribute=attribute, correlation_id=correlation_id)
