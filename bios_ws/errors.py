"""The one error tree of bios-ws.

Every refusal the service makes is one of these classes. The SOAP layer turns
them into faults in exactly one place (``bios_ws.soap.faults``), those that the
capabilities register as their faults (``bios_ws.capabilities``); the CLI turns
``AdminError`` into one line and a non-zero exit. Nothing else is allowed to
reach a caller: an unexpected exception becomes ``InternalError`` with a
correlation id, and its text stays in the server log.

    VbiosError                      code, message, attribute
    ├── ClientError                 faultcode "Client": the request was wrong
    │   ├── InvalidRequest          malformed or incomplete request
    │   ├── AccessDenied            the principal may not do this
    │   ├── DomainNotFound
    │   ├── DomainExists
    │   ├── UnknownAttribute        attribute = the name
    │   ├── InvalidAttributeValue   attribute = the name (type, bounds, length, values)
    │   ├── ReadOnlyAttribute       attribute = the name
    │   ├── ResetRequired           Immediate asked for a reset-required attribute
    │   ├── PasswordRequired        a setup password is set and was not given
    │   ├── InvalidPassword         a given password is wrong
    │   ├── VersionConflict         the caller's expected version is stale
    │   ├── InvalidBootOrder        not a permutation of the boot options
    │   ├── UnknownBootOption       attribute = the option id
    │   ├── InvalidPowerTransition  a power request that makes no sense now; attribute = state
    │   ├── InvalidSecureBootChange a key change the Secure Boot rules refuse; attribute = db
    │   ├── InvalidCapsule          a firmware capsule's layout is wrong; attribute = the field
    │   ├── CapsuleNotTrusted       its signature does not verify against the trusted signers;
    │   │                           reason = unsigned, bad-signature, wrong-digest,
    │   │                           untrusted-signer or expired (not yet a SOAP fault)
    │   ├── UnknownRequestKind      a system-management request of no kind the service knows
    │   ├── WatchdogNotArmed        a pet of a watchdog that is not armed
    │   ├── UnknownSubscription     no event subscription of this caller has this id
    │   └── SubscriptionExpired     the event subscription expired (Renew came too late)
    ├── ServerError                 faultcode "Server": the service failed
    │   ├── InternalError           unexpected; carries a correlation id
    │   ├── StoreUnavailable        the state store could not be reached
    │   │   └── StoreConflict       a transaction lost to another one (PostgreSQL's SQLSTATE
    │   │                           40001 or 40P01) more times than the store retries it
    │   ├── ServiceRestricted       the host's measurements do not match its reference:
    │   │                           state-changing operations are refused (restricted mode)
    │   ├── AttestationUnavailable  no TPM or no enrolled attestation key to quote with
    │   ├── PlatformUnavailable     the machine's software (QEMU, OVMF) is missing
    │   │   └── DomainElsewhere     another host of the fleet runs the domain's machine
    │   ├── MachineError            the machine failed (would not start, damaged variable store)
    │   ├── RemoteUnavailable       the remote vBIOS a routed capability is served by is down,
    │   │                           slow or refusing (``docs/routing.md``); never a local answer
    │   └── TpmError                the TPM refused or failed
    │       ├── TpmUnavailable      unreachable, not started, or failed mid-way
    │       ├── TpmPolicyMismatch   PCRs differ from the policy a secret was sealed to
    │       └── TpmLockout          dictionary-attack lockout
    └── AdminError                  refusals of the local admin CLI (never a fault)
        ├── StateDirectoryError     missing, foreign or unreadable state directory
        ├── KeyUnreadable           a key or its passphrase cannot be read
        ├── UnsafePermissions       other users could read or replace the home's keys
        ├── PortInUse
        └── RegistryError           the attribute registry file is invalid
"""

from __future__ import annotations

from typing import ClassVar, Literal

FaultKind = Literal["Client", "Server"]


class VbiosError(Exception):
    """Base of every bios-ws error. ``code`` is stable and part of the contract."""

    code: ClassVar[str] = "Error"
    fault_kind: ClassVar[FaultKind] = "Server"

    def __init__(self, message: str, *, attribute: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.attribute = attribute

    def __str__(self) -> str:
        return self.message


class ClientError(VbiosError):
    code = "ClientError"
    fault_kind = "Client"


class InvalidRequest(ClientError):
    code = "InvalidRequest"


class AccessDenied(ClientError):
    code = "AccessDenied"


class DomainNotFound(ClientError):
    code = "DomainNotFound"


class DomainExists(ClientError):
    code = "DomainExists"


class UnknownAttribute(ClientError):
    code = "UnknownAttribute"


class InvalidAttributeValue(ClientError):
    code = "InvalidAttributeValue"


class ReadOnlyAttribute(ClientError):
    code = "ReadOnlyAttribute"


class ResetRequired(ClientError):
    code = "ResetRequired"


class PasswordRequired(ClientError):
    code = "PasswordRequired"


class InvalidPassword(ClientError):
    code = "InvalidPassword"


class VersionConflict(ClientError):
    code = "VersionConflict"


class InvalidBootOrder(ClientError):
    code = "InvalidBootOrder"


class UnknownBootOption(ClientError):
    code = "UnknownBootOption"


class InvalidPowerTransition(ClientError):
    code = "InvalidPowerTransition"


class InvalidSecureBootChange(ClientError):
    code = "InvalidSecureBootChange"


class InvalidCapsule(ClientError):
    """A firmware capsule's layout is wrong: ``attribute`` names the field (UEFI spelling)."""

    code = "InvalidCapsule"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"invalid capsule: {field}: {reason}", attribute=field)
        self.field = field
        self.reason = reason


CapsuleTrustFailure = Literal[
    "unsigned", "bad-signature", "wrong-digest", "untrusted-signer", "expired"]


class CapsuleNotTrusted(ClientError):
    """A capsule's signature does not verify; ``reason`` says which check refused it."""

    code = "CapsuleNotTrusted"

    def __init__(self, reason: CapsuleTrustFailure, detail: str) -> None:
        super().__init__(f"capsule signature not trusted ({reason}): {detail}")
        self.reason: CapsuleTrustFailure = reason
        self.detail = detail


class FirmwareUpdateRefused(ClientError):
    """A verified capsule the update rules refuse; ``attribute`` names the capsule field
    that decided (FwVersion, MonotonicCount, UpdateImageTypeId) and ``status`` is the
    ESRT LastAttemptStatus code recorded for it."""

    code = "FirmwareUpdateRefused"

    def __init__(self, status: int, message: str, *, field: str | None = None) -> None:
        super().__init__(message, attribute=field)
        self.status = status


class UpdateInProgress(ClientError):
    """The domain has an update that has not ended; one runs at a time."""

    code = "UpdateInProgress"


class UnknownUpload(ClientError):
    """No open upload has this id (never begun, committed, expired, or another's)."""

    code = "UnknownUpload"


class ChunkRefused(ClientError):
    """A chunk of an upload is refused; ``attribute`` names the field (Offset, Data,
    Sha256) and the upload is as it was."""

    code = "ChunkRefused"


class UnknownFirmwareJob(ClientError):
    """No firmware job of this caller has this id."""

    code = "UnknownFirmwareJob"


class UnknownRequestKind(ClientError):
    """A system-management request of a kind the service does not handle."""

    code = "UnknownRequestKind"


class WatchdogNotArmed(ClientError):
    """A pet of the domain's watchdog while it is not armed (SetWatchdog arms it)."""

    code = "WatchdogNotArmed"
class UnknownSubscription(ClientError):
    """No event subscription of this caller has this id (never made, ended by
    Unsubscribe, long expired, or another caller's)."""

    code = "UnknownSubscription"


class SubscriptionExpired(ClientError):
    """The event subscription expired before this call: subscribe again (a cursor still
    reads from where it was)."""

    code = "SubscriptionExpired"


class ServerError(VbiosError):
    code = "ServerError"
    fault_kind = "Server"


class InternalError(ServerError):
    code = "InternalError"

    def __init__(self, correlation_id: str) -> None:
        super().__init__(f"internal error; correlation id {correlation_id}")
        self.correlation_id = correlation_id


class StoreUnavailable(ServerError):
    code = "StoreUnavailable"


class StoreConflict(StoreUnavailable):
    """A serialization failure or a deadlock, still there after the store's retries
    (``bios_ws.store.retry``). The same fault as StoreUnavailable on the wire."""


class ServiceRestricted(ServerError):
    code = "ServiceRestricted"


class AttestationUnavailable(ServerError):
    code = "AttestationUnavailable"


class PlatformUnavailable(ServerError):
    code = "PlatformUnavailable"


class DomainElsewhere(PlatformUnavailable):
    """This host cannot act on a machine another host of the fleet runs (the wire's
    PlatformUnavailable fault, whose message names that host)."""


class MachineError(ServerError):
    code = "MachineError"


class RemoteUnavailable(ServerError):
    """The remote vBIOS serving this call's capability (``vbios route``) gave no answer
    within the bound: down, slow, refusing the connection or this host's credential."""

    code = "RemoteUnavailable"


class RemoteOutcomeUnknown(RemoteUnavailable):
    """A RemoteUnavailable after the request was written whole: the remote may have run
    it (the guest's fault is the same; the forwarding host knows a write may have been
    applied)."""


class TpmError(ServerError):
    code = "TpmError"


class TpmUnavailable(TpmError):
    code = "TpmUnavailable"


class TpmPolicyMismatch(TpmError):
    code = "TpmPolicyMismatch"


class TpmLockout(TpmError):
    code = "TpmLockout"


class AdminError(VbiosError):
    """A refusal of the local admin tooling: printed as one line, exit status 1."""

    code = "AdminError"


class StateDirectoryError(AdminError):
    code = "StateDirectoryError"


class KeyUnreadable(AdminError):
    code = "KeyUnreadable"


class UnsafePermissions(AdminError):
    code = "UnsafePermissions"


class PortInUse(AdminError):
    code = "PortInUse"


class RegistryError(AdminError):
    code = "RegistryError"
