"""What the vBIOS returns, as plain frozen dataclasses (never zeep objects)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

# The system-management, thermal and events models, re-exported from their module.
from vbios_client.runtime_models import (
    EVENT_TYPES,
    OVERWRITE_POLICIES,
    Event,
    EventBatch,
    EventSubscription,
    Fan,
    SelEntry,
    Smbios,
    SystemEventLog,
    TemperatureSensor,
    Thermal,
    ThermalThreshold,
    WakeAlarm,
    Watchdog,
)

#: The names re-exported from ``runtime_models`` (for type checkers; the classes defined
#: here are imported from this module by name).
__all__ = ["EVENT_TYPES", "OVERWRITE_POLICIES", "Event", "EventBatch", "EventSubscription",
           "Fan", "SelEntry", "Smbios", "SystemEventLog", "TemperatureSensor", "Thermal",
           "ThermalThreshold", "WakeAlarm", "Watchdog"]

#: A BIOS attribute value: Enumeration, String and Password values are str.
Value = str | int | bool

ApplyTime = Literal["Immediate", "OnReset"]
APPLY_TIMES: tuple[str, ...] = ("Immediate", "OnReset")

ATTRIBUTE_TYPES: tuple[str, ...] = ("Enumeration", "Integer", "String", "Boolean", "Password")

#: Power requests (Redfish ResetType), as the contract names them.
RESET_TYPES: tuple[str, ...] = (
    "On", "ForceOn", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart",
    "PowerCycle", "PushPowerButton", "Nmi", "Pause", "Resume",
)


@dataclass(frozen=True)
class AttributeSet:
    """The current attribute values of the caller's domain."""

    version: int
    values: dict[str, Value]
    setup_password_set: bool


@dataclass(frozen=True)
class PendingAttributes:
    """Values that take effect at the next platform reset."""

    version: int
    values: dict[str, Value]


@dataclass(frozen=True)
class AttributeDefinition:
    name: str
    type: str
    display_name: str
    help_text: str = ""
    read_only: bool = False
    reset_required: bool = False
    lower_bound: int | None = None
    upper_bound: int | None = None
    scalar_increment: int | None = None
    allowed_values: tuple[str, ...] = ()
    min_length: int | None = None
    max_length: int | None = None
    default: Value | None = None

    def parse_value(self, text: str) -> Value:
        """Turn command-line text into this attribute's wire type (ValueError if it cannot)."""
        if self.type == "Boolean":
            lowered = text.strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError(f"{self.name} is a Boolean: use true or false, not {text!r}")
        if self.type == "Integer":
            try:
                return int(text.strip(), 10)
            except ValueError:
                raise ValueError(f"{self.name} is an Integer, not {text!r}") from None
        return text


@dataclass(frozen=True)
class AttributeRegistry:
    version: str
    attributes: tuple[AttributeDefinition, ...] = field(default=())

    def __iter__(self) -> Iterator[AttributeDefinition]:
        return iter(self.attributes)

    def __len__(self) -> int:
        return len(self.attributes)

    def __contains__(self, name: object) -> bool:
        return any(a.name == name for a in self.attributes)

    def lookup(self, name: str) -> AttributeDefinition:
        """The definition named ``name``; KeyError if the registry has none."""
        for definition in self.attributes:
            if definition.name == name:
                return definition
        raise KeyError(name)


@dataclass(frozen=True)
class BootOption:
    id: str
    display_name: str
    enabled: bool


@dataclass(frozen=True)
class BootConfig:
    version: int
    options: tuple[BootOption, ...]
    order: tuple[str, ...]
    boot_next: str | None


@dataclass(frozen=True)
class PowerState:
    """A domain's power: Redfish's state, why and when it last powered on, off or reset,
    and whether BIOS changes wait for the next boot."""

    power_state: str
    last_reset_cause: str | None
    last_reset_time: str | None
    pending_changes: bool


@dataclass(frozen=True)
class ResetOutcome:
    """The state a power request left, whether changes are still pending, and why."""

    power_state: str
    pending_changes: bool
    message: str


#: ResetSecureBootKeys types (Redfish ResetKeysType).
RESET_KEYS_TYPES: tuple[str, ...] = ("ResetAllKeysToDefault", "DeleteAllKeys", "DeletePK")
SECURE_BOOT_DATABASES: tuple[str, ...] = ("PK", "KEK", "db", "dbx")


@dataclass(frozen=True)
class SecureBoot:
    """The Secure Boot switch, what the firmware enforced at the current or last boot
    (Enabled, Disabled or Unknown), its mode, and the switch after the next reset."""

    enabled: bool
    current_boot: str
    mode: str
    pending_enabled: bool | None


@dataclass(frozen=True)
class SecureBootCertificate:
    subject: str
    issuer: str
    not_after: str
    sha256: str



#: Provisioning states of a guest's vBIOS (the secure-element model): S1 no firmware
#: image assigned yet, S2 an image but no credential, S3 personalized (a credential).
PROVISIONING_STATES: tuple[str, ...] = ("S1", "S2", "S3")


@dataclass(frozen=True)
class ProvisioningState:
    """Where the caller's domain stands, what it should do next, and until when its
    newest active certificate is valid (None without one)."""

    state: str
    next_step: str
    certificate_not_after: datetime | None


@dataclass(frozen=True)
class IssuedBundle:
    """A client bundle (cert.pem, key.pem, ca.pem) that enrollment or renewal wrote:
    the domain its certificate names, the certificate's serial (hex, as the server
    writes it) and validity, and the bundle directory."""

    domain: str
    serial: str
    not_before: datetime
    not_after: datetime
    path: Path


# -- firmware update ------------------------------------------------------------------

#: The states of a firmware update job (docs/firmware-update.md, "Jobs and slots").
FIRMWARE_JOB_STATES: tuple[str, ...] = (
    "Pending", "Staged", "NeedsReset", "Running", "Completed", "Failed", "RolledBack")
#: The states a job ends in; only Completed is a success.
FIRMWARE_JOB_ENDS: frozenset[str] = frozenset({"Completed", "Failed", "RolledBack"})


@dataclass(frozen=True)
class FirmwareEntry:
    """One firmware of the domain, as the ESRT lists it: its class (a GUID), version,
    the lowest version it accepts, the last update attempt and its status (a UEFI
    LastAttemptStatus name and code), the slot it runs from, and the SMBIOS BIOS
    Version the guest sees."""

    firmware_class: str
    fw_version: int
    lowest_supported_version: int
    last_attempt_version: int
    last_attempt_status: str
    last_attempt_status_code: int
    active_slot: str
    bios_version: str


@dataclass(frozen=True)
class FirmwareJob:
    """One update attempt: where it stands (``state``, ``percent_complete``), what the
    capsule claims (class, version, floor, monotonic count; None for a capsule that did
    not parse), the slot it goes to, its outcome (``status``: a LastAttemptStatus name,
    set once it ended), who signed it and who asked, and when."""

    job_id: str
    state: str
    percent_complete: int
    apply_time: str
    message: str
    requested_by: str
    capsule_sha256: str
    created_at: datetime
    updated_at: datetime
    firmware_class: str | None = None
    fw_version: int | None = None
    from_version: int | None = None
    lowest_supported_version: int | None = None
    monotonic_count: int | None = None
    slot: str | None = None
    status: str | None = None
    status_code: int | None = None
    signer: str | None = None

    @property
    def finished(self) -> bool:
        """Whether the job has ended (Completed, Failed or RolledBack)."""
        return self.state in FIRMWARE_JOB_ENDS

    @property
    def succeeded(self) -> bool:
        return self.state == "Completed"


@dataclass(frozen=True)
class FirmwareUpload:
    """An upload just begun: its id, the largest chunk the vBIOS takes, the offset of the
    first chunk, until when it is kept untouched, and for an encrypted upload the
    vBIOS's static transfer key and one-time key (uncompressed P-256 points)."""

    upload_id: str
    max_chunk_size: int
    next_offset: int
    expires_at: datetime
    server_static_key: bytes | None = None
    server_one_time_key: bytes | None = None

    @property
    def encrypted(self) -> bool:
        return self.server_one_time_key is not None


@dataclass(frozen=True)
class FirmwareUploadStatus:
    """Where an open upload stands: the capsule's size and SHA-256 (announced at the
    beginning), whether it travels encrypted, the bytes it takes in all (``total``: the
    size, plus the 16-byte tag when encrypted), the offset of the next chunk, and until
    when it is kept untouched."""

    upload_id: str
    size: int
    sha256: str
    encrypted: bool
    total: int
    next_offset: int
    expires_at: datetime

    @property
    def complete(self) -> bool:
        return self.next_offset >= self.total


@dataclass(frozen=True)
class FirmwareChunk:
    """What the vBIOS answered to a chunk: the next offset, the total, the new expiry."""

    next_offset: int
    total: int
    expires_at: datetime


@dataclass(frozen=True)
class CachedAnswer:
    """An answer the vBIOS served from its cache: the guest's capability is served by a
    remote vBIOS that was unavailable, and the route lets the vBIOS answer a read with
    that remote's earlier answer (``X-Vbios-Cached``). ``age``: seconds since the
    remote gave it (HTTP ``Age``); None if the vBIOS did not say."""

    remote: str
    age: int | None


def cached_answer(value: str | None) -> CachedAnswer | None:
    """The note of an ``X-Vbios-Cached: remote=NAME; age=N`` field, or None without one."""
    if value is None:
        return None
    fields: dict[str, str] = {}
    for part in value.split(";"):
        name, _, text = part.partition("=")
        fields.setdefault(name.strip().lower(), text.strip())
    age = fields.get("age", "")
    return CachedAnswer(fields.get("remote", ""), int(age) if age.isdigit() else None)
