"""Records of the firmware types for the response encoder, built from the use cases' values."""

from __future__ import annotations

from types import SimpleNamespace as Out
from typing import Any

from bios_ws.domain.firmware_job import FirmwareJob
from bios_ws.domain.firmware_update import FirmwareInventory, bios_version
from bios_ws.soap.attestation_codec import iso
from bios_ws.soap.firmware_types import STATUS_NAMES


def inventory_out(inventory: FirmwareInventory) -> Any:
    return Out(Entry=[Out(
        FirmwareClass=str(entry.firmware_class), FwVersion=entry.fw_version,
        LowestSupportedVersion=entry.lowest_supported_version,
        LastAttemptVersion=entry.last_attempt_version,
        LastAttemptStatus=STATUS_NAMES[entry.last_attempt_status],
        LastAttemptStatusCode=int(entry.last_attempt_status),
        ActiveSlot=entry.active_slot.value, BiosVersion=bios_version(entry.fw_version))
        for entry in inventory])


def job_out(job: FirmwareJob) -> Any:
    return Out(
        JobId=job.job_id, State=job.state.value, PercentComplete=job.percent_complete,
        ApplyTime=job.apply_time.value,
        FirmwareClass=None if job.firmware_class is None else str(job.firmware_class),
        FwVersion=job.fw_version, FromVersion=job.from_version,
        LowestSupportedVersion=job.lowest_supported_version,
        MonotonicCount=job.monotonic_count,
        Slot=None if job.slot is None else job.slot.value,
        Status=None if job.status is None else STATUS_NAMES[job.status],
        StatusCode=None if job.status is None else int(job.status),
        Message=job.message, Signer=job.signer or None, RequestedBy=job.principal,
        CapsuleSha256=job.capsule_sha256, CreatedAt=iso(job.created_at),
        UpdatedAt=iso(job.updated_at))


def jobs_out(jobs: list[FirmwareJob]) -> Any:
    return Out(Job=[job_out(job) for job in jobs])
