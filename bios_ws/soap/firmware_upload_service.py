"""Capsule upload operations: begin (plain, or encrypted with one-time keys), chunks,
where an upload is, and its commit into an update job."""

from __future__ import annotations

from typing import Any

from spyne import Boolean, Integer64, Service, Unicode

from bios_ws.domain.firmware_job import ApplyTime as ApplyTimeValue
from bios_ws.domain.firmware_upload import MAX_CHUNK_BYTES, FirmwareUpload
from bios_ws.service.firmware_upload import FirmwareUploadService, UploadOpened
from bios_ws.soap.attestation_codec import decode_bytes, iso
from bios_ws.soap.attestation_types import Base64
from bios_ws.soap.context import call_of
from bios_ws.soap.firmware_codec import job_out
from bios_ws.soap.firmware_types import FirmwareJob
from bios_ws.soap.settings_service import SERVICE_NAME
from bios_ws.soap.types import ApplyTime, operation, optional, required

_BEGIN = (required(Integer64), required(Unicode), optional(Base64))
_OPENED = {"returns": (required(Unicode), required(Integer64), required(Integer64),
                       required(Unicode), optional(Base64), optional(Base64)),
           "names": ("UploadId", "MaxChunkSize", "NextOffset", "ExpiresAt",
                     "ServerStaticKey", "ServerOneTimeKey")}


def _opened(opened: UploadOpened) -> tuple[Any, ...]:
    upload = opened.upload
    return (upload.upload_id, MAX_CHUNK_BYTES, upload.received, iso(upload.expires_at),
            opened.server_static_key, opened.server_one_time_key)


def _client_key(value: Any) -> bytes | None:
    return None if value is None else decode_bytes(value)


class FirmwareUploadSoapService(Service):  # type: ignore[misc]
    __service_name__ = SERVICE_NAME

    @operation(*_BEGIN, **_OPENED)
    def BeginFirmwareUpload(ctx: Any, Size: int, Sha256: str, ClientKey: Any) -> Any:
        call = call_of(ctx)
        return _opened(call.use(FirmwareUploadService).begin(
            call.principal, int(Size), str(Sha256), client_key=_client_key(ClientKey)))

    @operation(required(Unicode), *_BEGIN, **_OPENED)
    def BeginDomainFirmwareUpload(ctx: Any, Domain: str, Size: int, Sha256: str,
                                  ClientKey: Any) -> Any:
        call = call_of(ctx)
        return _opened(call.use(FirmwareUploadService).begin(
            call.principal, int(Size), str(Sha256), client_key=_client_key(ClientKey),
            domain_id=str(Domain)))

    @operation(required(Unicode), required(Integer64), required(Base64), required(Unicode),
               returns=(required(Integer64), required(Integer64), required(Unicode)),
               names=("NextOffset", "Total", "ExpiresAt"))
    def UploadFirmwareChunk(ctx: Any, UploadId: str, Offset: int, Data: Any,
                            Sha256: str) -> tuple[Any, ...]:
        call = call_of(ctx)
        upload = call.use(FirmwareUploadService).chunk(
            call.principal, str(UploadId), int(Offset), decode_bytes(Data), str(Sha256))
        return upload.received, upload.total, iso(upload.expires_at)

    @operation(required(Unicode),
               returns=(required(Integer64), required(Unicode), required(Boolean),
                        required(Integer64), required(Integer64), required(Unicode)),
               names=("Size", "Sha256", "Encrypted", "Total", "NextOffset", "ExpiresAt"))
    def GetFirmwareUpload(ctx: Any, UploadId: str) -> tuple[Any, ...]:
        call = call_of(ctx)
        upload: FirmwareUpload = call.use(FirmwareUploadService).status(call.principal,
                                                                        str(UploadId))
        return (upload.size, upload.sha256, upload.encrypted, upload.total, upload.received,
                iso(upload.expires_at))

    @operation(required(Unicode), optional(ApplyTime), returns=required(FirmwareJob),
               names="Job")
    def CommitFirmwareUpload(ctx: Any, UploadId: str, ApplyTime: str | None) -> Any:
        call = call_of(ctx)
        when = ApplyTimeValue(str(ApplyTime)) if ApplyTime is not None \
            else ApplyTimeValue.ON_RESET
        return job_out(call.use(FirmwareUploadService).commit(call.principal, str(UploadId),
                                                              when))
