"""The firmware update contract's types: ESRT-style inventory entries and update jobs.

Versions are ``xs:long`` (UEFI's UINT32 values), a MonotonicCount ``xs:unsignedLong``
(UINT64); LastAttemptStatus is given as the ESRT name and its code; times are ISO 8601
UTC strings.
"""

from __future__ import annotations

from spyne import ComplexModel, Enum, Integer32, Integer64, Unicode, UnsignedInteger64

from bios_ws.domain.firmware_job import JobState
from bios_ws.domain.firmware_update import LastAttemptStatus, Slot
from bios_ws.soap.types import TNS, ApplyTime, optional, repeated, required

#: ESRT LastAttemptStatus names, as the contract spells them.
STATUS_NAMES = {
    LastAttemptStatus.SUCCESS: "Success",
    LastAttemptStatus.UNSUCCESSFUL: "Unsuccessful",
    LastAttemptStatus.INSUFFICIENT_RESOURCES: "InsufficientResources",
    LastAttemptStatus.INCORRECT_VERSION: "IncorrectVersion",
    LastAttemptStatus.INVALID_FORMAT: "InvalidFormat",
    LastAttemptStatus.AUTH_ERROR: "AuthError",
    LastAttemptStatus.PWR_EVT_AC: "PowerEventAc",
    LastAttemptStatus.PWR_EVT_BATT: "PowerEventBattery",
    LastAttemptStatus.UNSATISFIED_DEPENDENCIES: "UnsatisfiedDependencies",
}

LastAttemptStatusType = Enum(*STATUS_NAMES.values(), type_name="LastAttemptStatus").customize(
    __namespace__=TNS)
FirmwareSlotType = Enum(*(s.value for s in Slot), type_name="FirmwareSlot").customize(
    __namespace__=TNS)
FirmwareJobStateType = Enum(*(s.value for s in JobState), type_name="FirmwareJobState"
                            ).customize(__namespace__=TNS)


class FirmwareEntry(ComplexModel):  # type: ignore[misc]
    """One firmware of a domain, as an ESRT entry describes it."""

    __namespace__ = TNS
    _type_info = [
        ("FirmwareClass", required(Unicode)),
        ("FwVersion", required(Integer64)),
        ("LowestSupportedVersion", required(Integer64)),
        ("LastAttemptVersion", required(Integer64)),
        ("LastAttemptStatus", required(LastAttemptStatusType)),
        ("LastAttemptStatusCode", required(Integer32)),
        ("ActiveSlot", required(FirmwareSlotType)),
        ("BiosVersion", required(Unicode)),
    ]


class FirmwareEntryList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("Entry", repeated(FirmwareEntry))]


class FirmwareJob(ComplexModel):  # type: ignore[misc]
    """One update attempt: where it is, how far, and how it ended."""

    __namespace__ = TNS
    _type_info = [
        ("JobId", required(Unicode)),
        ("State", required(FirmwareJobStateType)),
        ("PercentComplete", required(Integer32)),
        ("ApplyTime", required(ApplyTime)),
        ("FirmwareClass", optional(Unicode)),
        ("FwVersion", optional(Integer64)),
        ("FromVersion", optional(Integer64)),
        ("LowestSupportedVersion", optional(Integer64)),
        ("MonotonicCount", optional(UnsignedInteger64)),
        ("Slot", optional(FirmwareSlotType)),
        ("Status", optional(LastAttemptStatusType)),
        ("StatusCode", optional(Integer32)),
        ("Message", required(Unicode)),
        ("Signer", optional(Unicode)),
        ("RequestedBy", required(Unicode)),
        ("CapsuleSha256", required(Unicode)),
        ("CreatedAt", required(Unicode)),
        ("UpdatedAt", required(Unicode)),
    ]


class FirmwareJobList(ComplexModel):  # type: ignore[misc]
    __namespace__ = TNS
    _type_info = [("Job", repeated(FirmwareJob))]
