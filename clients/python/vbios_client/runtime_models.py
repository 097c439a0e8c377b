"""What the vBIOS returns for system-management requests, thermal readings and events, as
plain frozen dataclasses (re-exported by ``vbios_client.models``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

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
