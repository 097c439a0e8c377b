"""The system-management contract's types: SMBIOS types 0 to 3, System Event Log entries in
Redfish LogEntry fields, the wake alarm and the watchdog.

Times are ISO 8601 UTC strings (a wake time given with any offset). ``SensorType`` and
``EntryCode`` carry Redfish's spellings as plain strings (Redfish defines dozens; new
kinds of entries must not change the contract); ``Severity`` and ``OverWritePolicy`` are
enumerations.
"""

from __future__ import annotations

from spyne import Boolean, ComplexModel, Enum, Integer32, Integer64, Unicode

from bios_ws.domain.sel import OverWritePolicy, Severity
from bios_ws.soap.types import TNS, optional, repeated, required

SelSeverityType = Enum(*(s.value for s in Severity), type_name="SelSeverity").customize(
    __namespace__=TNS)
OverWritePolicyType = Enum(*(p.value for p in OverWritePolicy), type_name="OverWritePolicy"
                           ).customize(__namespace__=TNS)


class SmbiosBios(ComplexModel):  # type: ignore[misc]
    """SMBIOS type 0: BIOS information (ReleaseDate as SMBIOS writes it, MM/DD/YYYY)."""

    __namespace__ = TNS
    _type_info = [
        ("Vendor", required(Unicode)),
        ("Version", required(Unicode)),
        ("ReleaseDate", required(Unicode)),
    ]


class SmbiosSystem(ComplexModel):  # type: ignore[misc]
    """SMBIOS type 1: system information."""

    __namespace__ = TNS
    _type_info = [
        ("Manufacturer", required(Unicode)),
        ("ProductName", required(Unicode)),
        ("SerialNumber", required(Unicode)),
        ("Uuid", required(Unicode)),
        ("SkuNumber", optional(Unicode)),
        ("Family", required(Unicode)),
    ]


class SmbiosBaseboard(ComplexModel):  # type: ignore[misc]
    """SMBIOS type 2: baseboard information."""

    __namespace__ = TNS
    _type_info = [
        ("Manufacturer", required(Unicode)),
        ("ProductName", required(Unicode)),
        ("SerialNumber", required(Unicode)),
        ("AssetTag", optional(Unicode)),
    ]


class SmbiosChassis(ComplexModel):  # type: ignore[misc]
    """SMBIOS type 3: chassis information."""

    __namespace__ = TNS
    _type_info = [
        ("Manufacturer", required(Unicode)),
        ("SerialNumber", required(Unicode)),
        ("AssetTag", optional(Unicode)),
    ]


class SelMessageArgs(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("Arg", repeated(Unicode))]


class SelEntry(ComplexModel):  # type: ignore[misc]
    """One entry of a domain's System Event Log (a Redfish LogEntry of EntryType SEL)."""

    __namespace__ = TNS
    _type_info = [
        ("Id", required(Integer64)),
        ("Domain", required(Unicode)),
        ("Created", required(Unicode)),
        ("Severity", required(SelSeverityType)),
        ("Message", required(Unicode)),
        ("MessageId", required(Unicode)),
        ("MessageArgs", required(SelMessageArgs)),
        ("SensorType", required(Unicode)),
        ("EntryCode", required(Unicode)),
    ]


class SelEntryList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("Entry", repeated(SelEntry))]


class WakeAlarm(ComplexModel):  # type: ignore[misc]
    """A domain's wake alarm: when, who set it, and when."""

    __namespace__ = TNS
    _type_info = [
        ("WakeTime", required(Unicode)),
        ("SetBy", required(Unicode)),
        ("SetAt", required(Unicode)),
    ]


class Watchdog(ComplexModel):  # type: ignore[misc]
    """A domain's OS watchdog. Deadline: when it resets the domain unless petted (absent
    while disarmed, or while the domain does not run)."""

    __namespace__ = TNS
    _type_info = [
        ("Enabled", required(Boolean)),
        ("TimeoutSeconds", required(Integer32)),
        ("LastPet", optional(Unicode)),
        ("Deadline", optional(Unicode)),
        ("Expirations", required(Integer64)),
    ]
