"""Firmware update, the guest's calls (a part of ``BiosClient``): the inventory, the jobs
and their history, and capsule uploads in chunks, plain or encrypted with one-time keys.

``update_firmware`` is the whole of an update: BeginFirmwareUpload with the capsule's
size and SHA-256, UploadFirmwareChunk for each chunk (at most MaxChunkSize bytes, each
with its own SHA-256), CommitFirmwareUpload; the job it made is returned. A chunk that
fails on the way (the connection dropped, a timeout, ChunkRefused on its Offset or
Sha256) is not an end: GetFirmwareUpload says which offset the vBIOS expects next and
the upload goes on from there, up to ``MAX_RESUMES`` times in a row without progress.
The low-level calls are public too, for a tool that uploads its own way
(``begin_firmware_upload``, ``upload_firmware_chunk``, ``get_firmware_upload``,
``resume_firmware_upload``, ``commit_firmware_upload``).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vbios_client import _firmware_wire as wire
from vbios_client._wire import check_str
from vbios_client.exceptions import (
    ChunkRefused,
    FirmwareJobTimeout,
    TransportError,
    UnknownUpload,
    VbiosClientError,
)
from vbios_client.models import (
    APPLY_TIMES,
    FirmwareChunk,
    FirmwareEntry,
    FirmwareJob,
    FirmwareUpload,
    FirmwareUploadStatus,
)

if TYPE_CHECKING:
    from vbios_client._channel import SoapChannel

#: The largest chunk the vBIOS takes (docs/firmware-update.md, "Transfer"): the chunk
#: size of a resumed upload, which is not told MaxChunkSize again, unless given.
DEFAULT_CHUNK_SIZE = 512 * 1024
#: How many failures in a row (no byte taken in between) an upload survives.
MAX_RESUMES = 5
#: How many failed reads in a row ``wait_for_firmware_job`` survives.
MAX_POLL_FAILURES = 3
#: ``progress(sent, total)``: the bytes the vBIOS holds, of the bytes it takes in all.
UploadProgress = Callable[[int, int], None]
#: ``progress(job)``: the job each time it is read.
JobProgress = Callable[[FirmwareJob], None]
#: Chunk fields whose refusal is resumed from the vBIOS's next offset.
_RESUMED = frozenset({"Offset", "Sha256"})

_sleep = time.sleep  # tests replace it


class FirmwareCalls:
    """The firmware operations of ``BiosClient``."""

    @property
    def _channel(self) -> SoapChannel:  # BiosClient's
        raise NotImplementedError

    # -- reading ---------------------------------------------------------------------

    def firmware_inventory(self) -> list[FirmwareEntry]:
        """The domain's firmware, as the ESRT lists it (its system firmware first)."""
        return wire.inventory(self._channel.call("GetFirmwareInventory"))

    def firmware_history(self) -> list[FirmwareJob]:
        """Every update attempt of the domain, newest first (refused capsules too)."""
        return wire.history(self._channel.call("GetFirmwareHistory"))

    def firmware_job(self, job_id: str | None = None) -> FirmwareJob:
        """One job by id, or without an id the domain's newest (UnknownFirmwareJob if
        there is none)."""
        params: dict[str, Any] = {}
        if job_id is not None:
            check_str("job_id", job_id, empty=False)
            params["JobId"] = job_id
        return wire.firmware_job(self._channel.call("GetFirmwareJob", **params))

    def wait_for_firmware_job(self, job_id: str, *, timeout: float, poll: float = 0.5,
                              progress: JobProgress | None = None) -> FirmwareJob:
        """Read the job every ``poll`` seconds until it ends (Completed, Failed or
        RolledBack) and return it; ``FirmwareJobTimeout`` after ``timeout`` seconds.

        A job waiting for a reset (NeedsReset) ends only once the domain restarts:
        ``reset("ForceRestart")`` (or the guest's own reboot) does it.
        """
        check_str("job_id", job_id, empty=False)
        if not timeout > 0 or not poll > 0:
            raise ValueError("timeout and poll must be positive numbers of seconds")
        deadline = time.monotonic() + timeout
        failures = 0
        while True:
            try:
                job = self.firmware_job(job_id)
            except TransportError:
                failures += 1
                if failures > MAX_POLL_FAILURES or time.monotonic() >= deadline:
                    raise
                _sleep(poll)
                continue
            failures = 0
            if progress is not None:
                progress(job)
            if job.finished:
                return job
            left = deadline - time.monotonic()
            if left <= 0:
                raise FirmwareJobTimeout(
                    f"firmware job {job_id} is still {job.state} ({job.percent_complete}%)"
                    f" after {timeout:g}s", job)
            _sleep(min(poll, left))

    # -- updating --------------------------------------------------------------------

    def update_firmware(self, capsule: bytes, *, apply_time: str = "OnReset",
                        encrypt: bool = False, progress: UploadProgress | None = None
                        ) -> FirmwareJob:
        """Upload ``capsule`` (a signed UEFI FMP capsule) and make it an update job.

        ``apply_time`` OnReset (the default: at the domain's next reset) or Immediate
        (the vBIOS restarts the domain). With ``encrypt`` the capsule travels encrypted
        for this upload alone (one-time keys, AES-256-GCM). ``progress(sent, total)``
        is called after each chunk. The job is returned as the commit left it (see
        ``wait_for_firmware_job``); a capsule the vBIOS refuses raises its fault
        (InvalidCapsule, CapsuleNotTrusted, FirmwareUpdateRefused, UpdateInProgress).
        """
        data = _bytes("capsule", capsule)
        _check_apply_time(apply_time)
        digest = hashlib.sha256(data).hexdigest()
        sender = None
        if encrypt:
            from vbios_client._transfer import OneTimeSender  # brings cryptography

            sender = OneTimeSender()
        opened = self.begin_firmware_upload(
            len(data), digest, client_key=None if sender is None else sender.client_public())
        payload = data
        if sender is not None:
            payload = sender.encrypt(opened.upload_id, *_server_keys(opened), data)
        if progress is not None:
            progress(opened.next_offset, len(payload))
        chunk_size = opened.max_chunk_size if opened.max_chunk_size > 0 else DEFAULT_CHUNK_SIZE
        self._send(opened.upload_id, payload, opened.next_offset, chunk_size, progress)
        return self._commit(opened.upload_id, digest, apply_time)

    def begin_firmware_upload(self, size: int, sha256: str, *,
                              client_key: bytes | None = None) -> FirmwareUpload:
        """Open an upload of a capsule of ``size`` bytes whose SHA-256 is ``sha256``
        (hex); with ``client_key`` (a one-time P-256 public key, 65 bytes) it travels
        encrypted and the answer holds the vBIOS's keys."""
        _size("size", size)
        check_str("sha256", sha256, empty=False)
        params: dict[str, Any] = {"Size": size, "Sha256": sha256}
        if client_key is not None:
            params["ClientKey"] = _bytes("client_key", client_key)
        return wire.upload_opened(self._channel.call("BeginFirmwareUpload", **params))

    def upload_firmware_chunk(self, upload_id: str, offset: int, data: bytes, *,
                              sha256: str | None = None) -> FirmwareChunk:
        """Send ``data`` at ``offset`` (which must be the next offset) with its SHA-256
        (computed here unless given)."""
        check_str("upload_id", upload_id, empty=False)
        _size("offset", offset, low=0)
        chunk = _bytes("data", data)
        digest = hashlib.sha256(chunk).hexdigest() if sha256 is None else sha256
        return wire.chunk_taken(self._channel.call(
            "UploadFirmwareChunk", UploadId=upload_id, Offset=offset, Data=chunk,
            Sha256=digest))

    def get_firmware_upload(self, upload_id: str) -> FirmwareUploadStatus:
        """Where an open upload stands (UnknownUpload once committed or expired)."""
        check_str("upload_id", upload_id, empty=False)
        return wire.upload_status(upload_id, self._channel.call("GetFirmwareUpload",
                                                                UploadId=upload_id))

    def resume_firmware_upload(self, upload_id: str, data: bytes, *,
                               chunk_size: int = DEFAULT_CHUNK_SIZE,
                               progress: UploadProgress | None = None
                               ) -> FirmwareUploadStatus:
        """Send what the vBIOS lacks of ``data`` (the bytes the upload takes in all: for
        an encrypted upload the same ciphertext as before), from the offset it says is
        next; the upload's status after, complete (commit it next)."""
        payload = _bytes("data", data)
        _size("chunk_size", chunk_size)
        status = self.get_firmware_upload(upload_id)
        _same_total(status, payload)
        if progress is not None:
            progress(status.next_offset, status.total)
        self._send(upload_id, payload, status.next_offset, chunk_size, progress)
        return self.get_firmware_upload(upload_id)

    def commit_firmware_upload(self, upload_id: str, apply_time: str = "OnReset"
                               ) -> FirmwareJob:
        """Make the complete upload an update job (see ``update_firmware``)."""
        check_str("upload_id", upload_id, empty=False)
        _check_apply_time(apply_time)
        return wire.firmware_job(self._channel.call(
            "CommitFirmwareUpload", UploadId=upload_id, ApplyTime=apply_time))

    # -- the upload's steps ------------------------------------------------------------

    def _send(self, upload_id: str, data: bytes, offset: int, chunk_size: int,
              progress: UploadProgress | None) -> None:
        """Chunks of ``data`` from ``offset`` to its end. After a failure (a pause first,
        longer after each) the vBIOS says which offset is next (``next`` None: ask)."""
        total, failures = len(data), 0
        next_offset: int | None = offset
        while True:
            try:
                if next_offset is None:
                    status = self.get_firmware_upload(upload_id)
                    _same_total(status, data)
                    next_offset = status.next_offset
                if next_offset >= total:
                    return
                end = min(next_offset + chunk_size, total)
                taken = self.upload_firmware_chunk(upload_id, next_offset,
                                                   data[next_offset:end])
            except (TransportError, ChunkRefused) as exc:
                if isinstance(exc, ChunkRefused) and exc.attribute not in _RESUMED:
                    raise
                failures += 1
                if failures > MAX_RESUMES:
                    raise
                _sleep(min(0.1 * 2 ** (failures - 1), 2.0))
                next_offset = None
                continue
            if taken.next_offset <= next_offset or taken.total != total:
                raise TransportError(f"the vBIOS took the chunk at {next_offset} but says"
                                     f" the next is {taken.next_offset} of {taken.total}"
                                     f" bytes (this upload has {total})")
            next_offset, failures = taken.next_offset, 0
            if progress is not None:
                progress(next_offset, total)

    def _commit(self, upload_id: str, digest: str, apply_time: str) -> FirmwareJob:
        """Commit; when the connection failed during it, find out whether it was."""
        try:
            return self.commit_firmware_upload(upload_id, apply_time)
        except TransportError as lost:
            try:
                self.get_firmware_upload(upload_id)
            except UnknownUpload:  # taken: the domain's newest job is this capsule's
                return self._job_of(digest, lost)
            except VbiosClientError:
                raise lost from None
            return self.commit_firmware_upload(upload_id, apply_time)


    def _job_of(self, digest: str, lost: TransportError) -> FirmwareJob:
        """The domain's newest job if it is the capsule's (a refusal's Failed job too);
        ``lost`` raised otherwise."""
        try:
            newest = self.firmware_job()
        except VbiosClientError:
            raise lost from None
        if newest.capsule_sha256.lower() != digest:
            raise lost from None
        return newest


def _bytes(what: str, value: object) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{what} must be bytes, not {type(value).__name__}")
    if not value and what != "data":
        raise ValueError(f"{what} is empty")
    return bytes(value)


def _size(what: str, value: object, *, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if value < low:
        raise ValueError(f"{what} must be at least {low}, not {value}")


def _check_apply_time(apply_time: str) -> None:
    if apply_time not in APPLY_TIMES:
        raise ValueError(f"apply_time must be one of {', '.join(APPLY_TIMES)},"
                         f" not {apply_time!r}")


def _server_keys(opened: FirmwareUpload) -> tuple[bytes, bytes]:
    if opened.server_static_key is None or opened.server_one_time_key is None:
        from vbios_client._transfer import InvalidServerKey

        raise InvalidServerKey("the vBIOS answered no transfer keys to an encrypted"
                               " upload: nothing was sent")
    return opened.server_static_key, opened.server_one_time_key


def _same_total(status: FirmwareUploadStatus, data: bytes) -> None:
    if status.total != len(data):
        raise ValueError(f"upload {status.upload_id} takes {status.total} bytes, not the"
                         f" {len(data)} given: it is another capsule's (or not encrypted"
                         " the same way)")
