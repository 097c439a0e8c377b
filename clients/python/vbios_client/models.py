"""What the vBIOS returns, as plain frozen dataclasses (never zeep objects)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

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


# -- system management ----------------------------------------------------------------

#: What a full System Event Log does (Redfish OverWritePolicy).
OVERWRITE_POLICIES: tuple[str, ...] = ("WrapsWhenFull", "NeverOverWrites")


@dataclass(frozen=True)
class Smbios:
    """The domain's SMBIOS tables as its firmware shows them to the OS: type 0 (BIOS:
    vendor, version, release date MM/DD/YYYY), type 1 (system: manufacturer, product,
    serial number, UUID, SKU, family), type 2 (baseboard) and type 3 (chassis); an
    absent string is ""."""

    bios_vendor: str
    bios_version: str
    bios_release_date: str
    manufacturer: str
    product_name: str
    serial_number: str
    uuid: str
    sku_number: str
    family: str
    baseboard_manufacturer: str
    baseboard_product_name: str
    baseboard_serial_number: str
    baseboard_asset_tag: str
    chassis_manufacturer: str
    chassis_serial_number: str
    chassis_asset_tag: str


@dataclass(frozen=True)
class SelEntry:
    """An entry of the domain's System Event Log, in Redfish LogEntry fields: ``id``
    (grows, never reused), ``created``, ``severity`` (OK, Warning, Critical), ``message``,
    ``message_id`` (``VbiosSel.1.0.<Key>``) and its ``message_args``, ``sensor_type`` and
    ``entry_code`` (Redfish spellings)."""

    id: int
    domain: str
    created: datetime
    severity: str
    message: str
    message_id: str
    message_args: tuple[str, ...]
    sensor_type: str
    entry_code: str


@dataclass(frozen=True)
class SystemEventLog:
    """The log: its ring's capacity and overwrite policy, the entries a full
    NeverOverWrites log refused, and its entries, oldest first."""

    max_entries: int
    overwrite_policy: str
    dropped_entries: int
    entries: tuple[SelEntry, ...]


@dataclass(frozen=True)
class WakeAlarm:
    """When the vBIOS powers the domain on (LastResetCause RTCWakeup), who set it, when."""

    wake_time: datetime
    set_by: str
    set_at: datetime


@dataclass(frozen=True)
class Watchdog:
    """The OS watchdog: armed or not, its timeout, the last pet, when it resets the domain
    unless petted (None: disarmed or the domain does not run), how often it bit."""

    enabled: bool
    timeout_seconds: int
    last_pet: datetime | None
    deadline: datetime | None
    expirations: int
@dataclass(frozen=True)
class ThermalThreshold:
    """A sensor's threshold [degC], and how far below it a reading must fall to clear it."""

    reading: float
    hysteresis: float


@dataclass(frozen=True)
class TemperatureSensor:
    """A temperature sensor as Redfish shows it: its ``reading`` in ``units`` (``Cel``), its
    thresholds (the CPU sensor's; None for the others) and an admin's override in force
    (the sensor reads at least ``override_reading`` until ``override_expires``)."""

    name: str
    physical_context: str
    reading: float
    units: str
    upper_caution: ThermalThreshold | None = None
    upper_critical: ThermalThreshold | None = None
    upper_fatal: ThermalThreshold | None = None
    override_reading: float | None = None
    override_expires: datetime | None = None
    override_set_by: str | None = None


@dataclass(frozen=True)
class Fan:
    name: str
    speed_percent: float
    speed_rpm: float


@dataclass(frozen=True)
class Thermal:
    """The domain's thermal state: ``state`` Normal, Caution, Critical or Fatal (the
    thresholds its CPU sensor has reached), Redfish ``health``, its power, CPU load and the
    power it dissipates, where the ambient comes from (HostSensors or Default), when it
    was read, its temperature sensors and its fans."""

    state: str
    health: str
    power_state: str
    load_percent: float
    power_watts: float
    ambient_source: str
    reading_time: datetime
    temperatures: tuple[TemperatureSensor, ...] = ()
    fans: tuple[Fan, ...] = ()

    def sensor(self, name: str) -> TemperatureSensor:
        """The temperature sensor ``name`` (KeyError if there is none)."""
        for sensor in self.temperatures:
            if sensor.name == name:
                return sensor
        raise KeyError(name)


#: The event types of the contract (a subscription may name any of them).
EVENT_TYPES: tuple[str, ...] = (
    "SettingsChanged", "PendingChangesApplied", "PowerStateChanged",
    "ThermalThresholdCrossed", "IntegrityChanged", "FirmwareJobChanged",
    "CredentialRevoked",
)


@dataclass(frozen=True)
class Event:
    """One event, in Redfish's fields: its id (the cursor after it), type, time, severity
    (OK, Warning, Critical), message with its registry id and arguments, the resource it
    is about (``origin``) and the domain (None for a host-wide event)."""

    event_id: int
    event_type: str
    timestamp: datetime
    severity: str
    message: str
    message_id: str
    message_args: tuple[str, ...]
    origin: str
    domain: str | None = None


@dataclass(frozen=True)
class EventSubscription:
    """A pull subscription: its id, until when it lasts (renew it before), and the cursor
    it starts at (the newest event when it was made)."""

    subscription_id: str
    expires: datetime
    cursor: int


@dataclass(frozen=True)
class EventBatch:
    """What one GetEvents gave: the events, the cursor to read after next, whether events
    after the cursor were removed (retention) before they were read, and the
    subscription's expiry."""

    events: tuple[Event, ...]
    next_cursor: int
    events_lost: bool
    expires: datetime
