"""Capsule uploads in chunks, plain or encrypted with one-time keys (issue 13, "Transfer").

``begin`` opens an upload for a domain (a guest's own, or one the admin names) with
the capsule's size and SHA-256; an encrypted one also takes the client's one-time
public key and answers the transfer keys (``docs/firmware-update.md``). ``chunk``
appends bytes at the next offset after checking the chunk's SHA-256; ``status`` says
which offset is next (a client resumes from there after a dropped connection);
``commit`` checks the whole, decrypts it when encrypted, and hands the capsule to
``FirmwareUpdateService.submit``. The chunks wait in the store, each written in the
transaction that moves the upload's next offset (a compare-and-set: two senders of
one offset cannot both succeed), so that every server process and host on the store
can take the next one. Uploads not touched for ``UPLOAD_LIFETIME`` are removed with
their bytes (``expire``, run at every begin).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.firmware_job import ApplyTime, FirmwareJob
from bios_ws.domain.firmware_upload import (
    MAX_CAPSULE_BYTES,
    MAX_OPEN_UPLOADS,
    UPLOAD_LIFETIME,
    FirmwareUpload,
    chunk_problem,
    is_sha256,
    is_upload_id,
)
from bios_ws.domain.ports import Clock, UnitOfWorkFactory
from bios_ws.domain.principal import Principal
from bios_ws.errors import (
    ChunkRefused,
    InvalidRequest,
    UnknownUpload,
    VbiosError,
)
from bios_ws.service.audit import audit_refusal
from bios_ws.service.bios import WriteGate, outcome_of
from bios_ws.service.firmware_update import FirmwareUpdateService, Submission

BEGIN_OPERATION = "BeginFirmwareUpload"
CHUNK_OPERATION = "UploadFirmwareChunk"
COMMIT_OPERATION = "CommitFirmwareUpload"


class TransferAccepted(Protocol):
    @property
    def server_one_time_public(self) -> bytes: ...

    @property
    def wrapped_key(self) -> bytes: ...

    @property
    def client_key_fingerprint(self) -> str: ...


class TransferKey(Protocol):
    """The vBIOS's static transfer key (``bios_ws.firmware.transfer.TransferKey``)."""

    def public_point(self) -> bytes: ...

    def accept(self, upload_id: str, client_public: bytes) -> TransferAccepted: ...

    def decrypt(self, upload_id: str, wrapped_key: bytes, ciphertext: bytes) -> bytes: ...


@dataclass(frozen=True)
class UploadOpened:
    upload: FirmwareUpload
    #: Encrypted uploads: the static and one-time public keys of the vBIOS (X9.62).
    server_static_key: bytes | None = None
    server_one_time_key: bytes | None = None


class FirmwareUploadService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, updates: FirmwareUpdateService,
                 transfer_key: Callable[[], TransferKey] | None,
                 gate: WriteGate | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self._updates = updates
        self._transfer_key = transfer_key
        self._gate = gate

    def begin(self, principal: Principal, size: int, sha256: str, *,
              client_key: bytes | None = None, domain_id: str | None = None) -> UploadOpened:
        """Open an upload of a capsule of ``size`` bytes with SHA-256 ``sha256``."""
        requested = domain_id
        try:
            target = self._updates.target(principal, domain_id)
            requested = target
            if self._gate is not None:
                self._gate()
            if not 0 < size <= MAX_CAPSULE_BYTES:
                raise InvalidRequest(f"Size {size} is outside 1..{MAX_CAPSULE_BYTES} bytes")
            digest = sha256.strip().lower()
            if not is_sha256(digest):
                raise InvalidRequest("Sha256 is not a SHA-256 digest (64 hex digits)")
            self.expire()
            opened = self._open(principal, target, size, digest, client_key)
        except VbiosError as exc:
            audit_refusal(self._uow, AuditRecord(self._clock(), str(principal),
                                                 BEGIN_OPERATION, requested,
                                                 outcome_of(exc), digest_changes({})))
            raise
        return opened

    def _open(self, principal: Principal, domain_id: str, size: int, digest: str,
              client_key: bytes | None) -> UploadOpened:
        upload_id = secrets.token_hex(16)
        now = self._clock()
        wrapped = static = one_time = None
        fingerprint = None
        if client_key is not None:
            key = self._key()
            try:
                accepted = key.accept(upload_id, client_key)
            except ValueError as exc:
                raise InvalidRequest(f"ClientKey is refused: {exc}") from None
            wrapped, static = accepted.wrapped_key, key.public_point()
            one_time, fingerprint = accepted.server_one_time_public, \
                accepted.client_key_fingerprint
        upload = FirmwareUpload(upload_id, domain_id, str(principal), size, digest, now,
                                now + UPLOAD_LIFETIME, wrapped_key=wrapped)
        with self._uow() as uow:
            uow.begin_writing()
            uow.domains.get(domain_id)
            if len(uow.firmware.uploads(domain_id)) >= MAX_OPEN_UPLOADS:
                raise InvalidRequest(f"this domain has {MAX_OPEN_UPLOADS} uploads open:"
                                     " commit them or let them expire")
            if fingerprint is not None and not uow.firmware.use_transfer_key(fingerprint,
                                                                              now):
                raise InvalidRequest("ClientKey was used before: a one-time key is used once")
            uow.firmware.add_upload(upload)
            uow.audit.append(AuditRecord(now, str(principal), BEGIN_OPERATION, domain_id,
                                         "ok", digest_changes({
                                             "upload": upload_id, "size": size,
                                             "sha256": digest,
                                             "encrypted": upload.encrypted})))
            uow.commit()
        return UploadOpened(upload, static, one_time)

    def chunk(self, principal: Principal, upload_id: str, offset: int, data: bytes,
              sha256: str) -> FirmwareUpload:
        """Append ``data`` at ``offset``; the upload after it."""
        with self._refusals_audited(principal, CHUNK_OPERATION, upload_id):
            return self._chunk(principal, upload_id, offset, data, sha256)

    def _chunk(self, principal: Principal, upload_id: str, offset: int, data: bytes,
               sha256: str) -> FirmwareUpload:
        self.status(principal, upload_id)  # UnknownUpload first
        if hashlib.sha256(data).hexdigest() != sha256.strip().lower():
            raise ChunkRefused("the chunk's SHA-256 does not match its bytes: nothing was"
                               " taken; send it again", attribute="Sha256")
        with self._uow() as uow:
            current = uow.firmware.get_upload(upload_id, for_update=True)
            if current is None:  # removed since it was looked at
                raise UnknownUpload(f"no open upload {upload_id}")
            problem = chunk_problem(current, offset, len(data))
            if problem is not None:
                raise ChunkRefused(f"{problem}: nothing was taken",
                                   attribute="Data" if offset == current.received
                                   else "Offset")
            grown = current.received_chunk(len(data), self._clock())
            uow.firmware.add_chunk(upload_id, offset, data)
            if not uow.firmware.save_upload(grown, current.received):
                raise ChunkRefused("another chunk was taken meanwhile: ask which offset is"
                                   " next", attribute="Offset")
            uow.commit()
        return grown

    def status(self, principal: Principal, upload_id: str) -> FirmwareUpload:
        """The open upload of this id, if ``principal`` may use it (its domain's guest, or
        the admin); UnknownUpload otherwise, or when it has expired."""
        upload = None
        if is_upload_id(upload_id):
            with self._uow() as uow:
                upload = uow.firmware.get_upload(upload_id)
        if upload is None or not _may_use(principal, upload) or upload.expired(self._clock()):
            raise UnknownUpload(f"no open upload {upload_id[:64]!r} of this caller (never"
                                " begun, committed, or expired)")
        return upload

    def commit(self, principal: Principal, upload_id: str,
               apply_time: ApplyTime = ApplyTime.ON_RESET) -> FirmwareJob:
        """The complete upload, checked (and decrypted), submitted as an update."""
        with self._refusals_audited(principal, COMMIT_OPERATION, upload_id):
            upload, capsule = self._complete(principal, upload_id)
        return self._updates.submit(Submission(principal, upload.domain_id, capsule,
                                               apply_time))

    def _complete(self, principal: Principal, upload_id: str) -> tuple[FirmwareUpload, bytes]:
        upload = self.status(principal, upload_id)
        if not upload.complete:
            raise ChunkRefused(f"the upload has {upload.received} of its {upload.total} bytes:"
                               f" the next chunk starts at {upload.received}",
                               attribute="Offset")
        with self._uow() as uow:
            data = uow.firmware.read_chunks(upload_id)
        self._forget(upload_id)
        capsule = self._plain(upload, data)
        if hashlib.sha256(capsule).hexdigest() != upload.sha256:
            raise ChunkRefused("the uploaded capsule's SHA-256 is not the one announced at the"
                               " beginning: the upload is discarded", attribute="Sha256")
        return upload, capsule

    @contextlib.contextmanager
    def _refusals_audited(self, principal: Principal, operation: str,
                          upload_id: str) -> Iterator[None]:
        try:
            yield
        except VbiosError as exc:
            audit_refusal(self._uow, AuditRecord(
                self._clock(), str(principal), operation, principal.domain_id,
                outcome_of(exc), digest_changes({"upload": upload_id[:64]})))
            raise

    def expire(self) -> int:
        """Remove the uploads not touched for their lifetime, with their bytes."""
        now = self._clock()
        with self._uow() as uow:
            stale = [u.upload_id for u in uow.firmware.uploads() if u.expired(now)]
        for upload_id in stale:
            self._forget(upload_id)
        return len(stale)

    def _plain(self, upload: FirmwareUpload, data: bytes) -> bytes:
        if len(data) != upload.total:
            raise ChunkRefused(f"the upload holds {len(data)} bytes, not {upload.total}: it"
                               " is discarded; begin again", attribute="Data")
        if upload.wrapped_key is None:
            return data
        try:
            return self._key().decrypt(upload.upload_id, upload.wrapped_key, data)
        except ValueError:
            raise ChunkRefused("the encrypted capsule does not decrypt (its tag does not"
                               " verify: the ciphertext was changed, or encrypted with other"
                               " keys): it is discarded", attribute="Data") from None

    def _key(self) -> TransferKey:
        if self._transfer_key is None:
            raise InvalidRequest("this vBIOS process has no transfer key: encrypted uploads"
                                 " are not available here (plain uploads are)")
        return self._transfer_key()

    def _forget(self, upload_id: str) -> None:
        with self._uow() as uow:
            uow.firmware.remove_upload(upload_id)
            uow.commit()


def _may_use(principal: Principal, upload: FirmwareUpload) -> bool:
    try:
        principal.require_admin()
        return True
    except VbiosError:
        return principal.domain_id == upload.domain_id
