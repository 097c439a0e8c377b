"""Firmware answers (as ``_answers`` reads them) turned into vbios_client models.

Read by attribute name only, as ``_wire`` does: an optional field absent is None, an
empty string None, and a response of one field is that field's value (the list type
of GetFirmwareInventory and GetFirmwareHistory, the job of GetFirmwareJob and
CommitFirmwareUpload).
"""

from __future__ import annotations

from typing import Any

from vbios_client._wire import items, utc_time
from vbios_client.models import (
    FirmwareChunk,
    FirmwareEntry,
    FirmwareJob,
    FirmwareUpload,
    FirmwareUploadStatus,
)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _opt_bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def firmware_entry(wire: Any) -> FirmwareEntry:
    return FirmwareEntry(
        firmware_class=str(wire.FirmwareClass), fw_version=int(wire.FwVersion),
        lowest_supported_version=int(wire.LowestSupportedVersion),
        last_attempt_version=int(wire.LastAttemptVersion),
        last_attempt_status=str(wire.LastAttemptStatus),
        last_attempt_status_code=int(wire.LastAttemptStatusCode),
        active_slot=str(wire.ActiveSlot), bios_version=str(wire.BiosVersion or ""))


def inventory(response: Any) -> list[FirmwareEntry]:
    """GetFirmwareInventory's answer: its FirmwareEntryList (or that list's items)."""
    return [firmware_entry(entry) for entry in items(response, "Entry")]


def firmware_job(wire: Any) -> FirmwareJob:
    return FirmwareJob(
        job_id=str(wire.JobId), state=str(wire.State),
        percent_complete=int(wire.PercentComplete), apply_time=str(wire.ApplyTime),
        message=str(wire.Message or ""), requested_by=str(wire.RequestedBy or ""),
        capsule_sha256=str(wire.CapsuleSha256 or ""),
        created_at=utc_time(str(wire.CreatedAt)), updated_at=utc_time(str(wire.UpdatedAt)),
        firmware_class=_opt_str(getattr(wire, "FirmwareClass", None)),
        fw_version=_opt_int(getattr(wire, "FwVersion", None)),
        from_version=_opt_int(getattr(wire, "FromVersion", None)),
        lowest_supported_version=_opt_int(getattr(wire, "LowestSupportedVersion", None)),
        monotonic_count=_opt_int(getattr(wire, "MonotonicCount", None)),
        slot=_opt_str(getattr(wire, "Slot", None)),
        status=_opt_str(getattr(wire, "Status", None)),
        status_code=_opt_int(getattr(wire, "StatusCode", None)),
        signer=_opt_str(getattr(wire, "Signer", None)))


def history(response: Any) -> list[FirmwareJob]:
    """GetFirmwareHistory's answer: its FirmwareJobList (or that list's items), newest
    first as the vBIOS orders them."""
    return [firmware_job(job) for job in items(response, "Job")]


def upload_opened(response: Any) -> FirmwareUpload:
    return FirmwareUpload(
        upload_id=str(response.UploadId), max_chunk_size=int(response.MaxChunkSize),
        next_offset=int(response.NextOffset), expires_at=utc_time(str(response.ExpiresAt)),
        server_static_key=_opt_bytes(getattr(response, "ServerStaticKey", None)),
        server_one_time_key=_opt_bytes(getattr(response, "ServerOneTimeKey", None)))


def chunk_taken(response: Any) -> FirmwareChunk:
    return FirmwareChunk(next_offset=int(response.NextOffset), total=int(response.Total),
                         expires_at=utc_time(str(response.ExpiresAt)))


def upload_status(upload_id: str, response: Any) -> FirmwareUploadStatus:
    return FirmwareUploadStatus(
        upload_id=upload_id, size=int(response.Size), sha256=str(response.Sha256 or ""),
        encrypted=bool(response.Encrypted), total=int(response.Total),
        next_offset=int(response.NextOffset), expires_at=utc_time(str(response.ExpiresAt)))
