"""A domain's System Event Log (SEL): entries in Redfish LogEntry fields, kept in a ring.

Each domain has one log, as a BMC keeps one SEL per machine. An entry carries what a
Redfish ``LogEntry`` of EntryType ``SEL`` carries: ``Id`` (numbered from 1 per domain,
never reused, not even after a clear), ``Created``, ``Severity`` (``OK``, ``Warning``,
``Critical``), ``Message``, ``MessageId`` with its ``MessageArgs``, ``SensorType`` and
``EntryCode`` (the Redfish spellings of IPMI's sensor types and event codes).

The log is a ring of ``SelPolicy.max_entries`` entries with Redfish's
``OverWritePolicy``: ``WrapsWhenFull`` (the default) drops the oldest entries to take a
new one; ``NeverOverWrites`` refuses new entries once full (they are counted as
dropped, and whatever caused them goes on: a full log never stops a power change).
``plan_append`` is that one rule; both store adapters follow it.

What lands in the log is made here, one function per kind of event (``power_changed``,
``restricted_mode``, ``credential_revoked``, ``firmware_job_ended``, ``log_cleared``,
``watchdog_expired``, ``wake_alarm``, ``temperature_crossed``), their MessageIds in the
``VbiosSel.1.0`` registry (``REGISTRY``; ``docs/system-management.md`` lists them).
Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bios_ws.errors import InvalidRequest

#: The message registry (prefix of every MessageId) and its version.
REGISTRY = "VbiosSel.1.0"
DEFAULT_MAX_ENTRIES = 512
MIN_MAX_ENTRIES = 16
MAX_MAX_ENTRIES = 4096
#: Longest Message and MessageArgs item kept (characters).
MAX_TEXT = 512


class Severity(StrEnum):
    """Redfish ``Resource.Health`` values, as LogEntry.Severity uses them."""

    OK = "OK"
    WARNING = "Warning"
    CRITICAL = "Critical"


class OverWritePolicy(StrEnum):
    """Redfish ``LogService.OverWritePolicy`` (``Unknown`` is not offered)."""

    WRAPS_WHEN_FULL = "WrapsWhenFull"
    NEVER_OVERWRITES = "NeverOverWrites"


class SensorType(StrEnum):
    """The Redfish ``SensorType`` values this log uses (IPMI sensor types)."""

    POWER_STATE = "System ACPI PowerState"
    BOOT_RESTART = "SystemBoot/Restart"
    WATCHDOG = "Watchdog"
    SECURITY = "Platform Security Violation Attempt"
    SESSION_AUDIT = "Session Audit"
    VERSION_CHANGE = "Version Change"
    LOG_DISABLED = "Event Logging Disabled"
    TEMPERATURE = "Temperature"


class EntryCode(StrEnum):
    """The Redfish ``LogEntryCode`` values this log uses."""

    ASSERT = "Assert"
    DEASSERT = "Deassert"
    INFORMATIONAL = "Informational"
    TO_RUNNING = "Transition to Running"
    TO_POWER_OFF = "Transition to Power Off"
    TO_IDLE = "Transition to Idle"
    STATE_ASSERTED = "State Asserted"
    UPPER_NON_CRITICAL_HIGH = "Upper Non-critical - going high"
    UPPER_NON_CRITICAL_LOW = "Upper Non-critical - going low"
    UPPER_CRITICAL_HIGH = "Upper Critical - going high"
    UPPER_CRITICAL_LOW = "Upper Critical - going low"
    UPPER_FATAL_HIGH = "Upper Non-recoverable - going high"
    UPPER_FATAL_LOW = "Upper Non-recoverable - going low"


@dataclass(frozen=True)
class SelPolicy:
    """How many entries a domain's log keeps, and what a full log does."""

    max_entries: int = DEFAULT_MAX_ENTRIES
    overwrite: OverWritePolicy = OverWritePolicy.WRAPS_WHEN_FULL

    def __post_init__(self) -> None:
        check_max_entries(self.max_entries)


def check_max_entries(value: int) -> int:
    """InvalidRequest unless ``value`` is a capacity the log takes."""
    if isinstance(value, bool) or not isinstance(value, int) or not (
            MIN_MAX_ENTRIES <= value <= MAX_MAX_ENTRIES):
        raise InvalidRequest(f"a log keeps {MIN_MAX_ENTRIES} to {MAX_MAX_ENTRIES} entries,"
                             f" not {value!r}", attribute="MaxNumberOfRecords")
    return value


@dataclass(frozen=True)
class SelRecord:
    """What a writer logs; the log gives it its Id."""

    created: datetime
    severity: Severity
    message_id: str
    message: str
    message_args: tuple[str, ...]
    sensor_type: str
    entry_code: str


@dataclass(frozen=True)
class SelEntry:
    """An entry of a domain's log."""

    domain_id: str
    entry_id: int
    created: datetime
    severity: Severity
    message_id: str
    message: str
    message_args: tuple[str, ...]
    sensor_type: str
    entry_code: str

    @classmethod
    def of(cls, domain_id: str, entry_id: int, record: SelRecord) -> SelEntry:
        return cls(domain_id, entry_id, record.created, record.severity, record.message_id,
                   record.message, record.message_args, record.sensor_type, record.entry_code)


@dataclass(frozen=True)
class SelLog:
    """A domain's log without its entries: its policy, how many it holds, the last Id
    given, and how many entries a full ``NeverOverWrites`` log refused."""

    domain_id: str
    policy: SelPolicy
    entries: int = 0
    last_id: int = 0
    dropped: int = 0


@dataclass(frozen=True)
class AppendPlan:
    """What taking one more entry does: whether it is kept, and how many of the oldest
    entries go first."""

    accept: bool
    evict: int


def plan_append(policy: SelPolicy, held: int) -> AppendPlan:
    """The ring's rule for a log of ``policy`` holding ``held`` entries."""
    if held < policy.max_entries:
        return AppendPlan(True, 0)
    if policy.overwrite is OverWritePolicy.NEVER_OVERWRITES:
        return AppendPlan(False, 0)
    return AppendPlan(True, held - policy.max_entries + 1)


def trim_to(policy: SelPolicy, held: int) -> int:
    """How many of the oldest entries go when a log holding ``held`` takes ``policy``
    (a smaller capacity keeps the newest entries, whatever the overwrite policy)."""
    return max(held - policy.max_entries, 0)


# -- what lands in the log -----------------------------------------------------------


def _record(at: datetime, severity: Severity, key: str, message: str, args: tuple[str, ...],
            sensor: SensorType, code: EntryCode | str) -> SelRecord:
    return SelRecord(at, severity, f"{REGISTRY}.{key}", message[:MAX_TEXT],
                     tuple(arg[:MAX_TEXT] for arg in args), sensor.value, str(code))


#: The entry code of a power state the machine reached.
_POWER_CODES = {"On": EntryCode.TO_RUNNING, "Off": EntryCode.TO_POWER_OFF,
                "Paused": EntryCode.TO_IDLE}
#: Reset causes that are not routine.
_CAUSE_SEVERITY = {"Crash": Severity.CRITICAL, "Watchdog": Severity.WARNING}


def power_changed(at: datetime, state: str, cause: str | None) -> SelRecord:
    """The machine reached ``state`` (On, Off, PoweringOn, ...), by a reset of ``cause``
    (None: not a reset, e.g. a pause)."""
    severity = _CAUSE_SEVERITY.get(cause or "", Severity.OK)
    why = f" ({cause})" if cause else ""
    return _record(at, severity, "PowerStateChanged", f"The power state is {state}{why}.",
                   (state, cause or ""), SensorType.POWER_STATE,
                   _POWER_CODES.get(state, EntryCode.STATE_ASSERTED))


def restricted_mode(at: datetime, entered: bool, summary: str) -> SelRecord:
    """The host entered or left restricted mode (its measurements against the reference)."""
    if entered:
        return _record(at, Severity.CRITICAL, "RestrictedModeEntered",
                       f"The host entered restricted mode: {summary}", (summary,),
                       SensorType.SECURITY, EntryCode.ASSERT)
    return _record(at, Severity.OK, "RestrictedModeLeft",
                   "The host left restricted mode: its measurements match the reference.",
                   (summary,), SensorType.SECURITY, EntryCode.DEASSERT)


def credential_revoked(at: datetime, serial: str, reason: str) -> SelRecord:
    return _record(at, Severity.WARNING, "CredentialRevoked",
                   f"Client certificate {serial} of this domain was revoked ({reason}).",
                   (serial, reason), SensorType.SESSION_AUDIT, EntryCode.INFORMATIONAL)


def firmware_job_ended(at: datetime, job_id: str, state: str, fw_version: int | None,
                       message: str) -> SelRecord:
    """A firmware update job ended: Completed, Failed or RolledBack."""
    severity = Severity.OK if state == "Completed" else Severity.WARNING
    version = "?" if fw_version is None else str(fw_version)
    return _record(at, severity, f"FirmwareUpdate{state}",
                   f"Firmware update to version {version} ended {state}: {message}",
                   (job_id, state, version), SensorType.VERSION_CHANGE,
                   EntryCode.INFORMATIONAL)


def log_cleared(at: datetime, by: str, removed: int) -> SelRecord:
    """The one entry a cleared log starts with (as a BMC's SEL does)."""
    return _record(at, Severity.OK, "LogCleared",
                   f"Log cleared by {by} ({removed} entries removed).", (by, str(removed)),
                   SensorType.LOG_DISABLED, EntryCode.INFORMATIONAL)


def watchdog_expired(at: datetime, timeout_seconds: int, action: str) -> SelRecord:
    return _record(at, Severity.WARNING, "WatchdogExpired",
                   f"The OS watchdog was not petted for {timeout_seconds} s: {action}.",
                   (str(timeout_seconds), action), SensorType.WATCHDOG, EntryCode.ASSERT)


def wake_alarm(at: datetime, wake_at: str, outcome: str, ok: bool = True) -> SelRecord:
    """A wake alarm came due: what it did (the domain powered on, or why not)."""
    return _record(at, Severity.OK if ok else Severity.WARNING, "WakeAlarm",
                   f"Wake alarm of {wake_at}: {outcome}.", (wake_at, outcome),
                   SensorType.BOOT_RESTART, EntryCode.INFORMATIONAL)


#: The entry code of a threshold crossed, by threshold and direction (Redfish spellings).
THRESHOLD_CODES = {
    ("UpperCaution", True): EntryCode.UPPER_NON_CRITICAL_HIGH,
    ("UpperCaution", False): EntryCode.UPPER_NON_CRITICAL_LOW,
    ("UpperCritical", True): EntryCode.UPPER_CRITICAL_HIGH,
    ("UpperCritical", False): EntryCode.UPPER_CRITICAL_LOW,
    ("UpperFatal", True): EntryCode.UPPER_FATAL_HIGH,
    ("UpperFatal", False): EntryCode.UPPER_FATAL_LOW,
}


def temperature_crossed(at: datetime, sensor: str, reading_celsius: float, threshold: str,
                        threshold_celsius: float, going_high: bool) -> SelRecord:
    """A temperature reading crossed a threshold (``UpperCaution``, ``UpperCritical`` or
    ``UpperFatal``), going high or back low. Going high is Warning at UpperCaution and
    Critical above; going back low is OK."""
    code = THRESHOLD_CODES.get((threshold, going_high))
    if code is None:
        raise ValueError(f"no threshold {threshold!r}")
    severity = (Severity.OK if not going_high else
                Severity.WARNING if threshold == "UpperCaution" else Severity.CRITICAL)
    direction = "rose above" if going_high else "fell below"
    return _record(at, severity, "TemperatureThresholdCrossed",
                   f"{sensor} {direction} its {threshold} threshold of"
                   f" {threshold_celsius:g} Cel (reading {reading_celsius:g} Cel).",
                   (sensor, f"{reading_celsius:g}", threshold, f"{threshold_celsius:g}"),
                   SensorType.TEMPERATURE, code)
