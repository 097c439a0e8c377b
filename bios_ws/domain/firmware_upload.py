"""A capsule upload in chunks: what the service knows of one between its calls.

Capsules are megabytes and a SOAP body stays under 1 MiB, so a capsule travels in
chunks (issue 13)::

    BeginFirmwareUpload(size, SHA-256)      -> upload id (and, encrypted, the keys)
    UploadFirmwareChunk(id, offset, bytes, SHA-256 of the chunk) -> next offset
    GetFirmwareUpload(id)                    -> next offset (resume after a drop)
    CommitFirmwareUpload(id, apply time)     -> a firmware job

Chunks arrive in order: a chunk must start at the next offset (a resend of the
last chunk after a lost answer is told the offset it should have used). The
chunks wait in the store; an upload not committed before it expires is removed with
its bytes.

An encrypted upload carries the capsule AES-GCM encrypted (``bios_ws.firmware.
transfer``): ``size`` and ``sha256`` are the capsule's, and the bytes sent are
``size + TAG_BYTES`` long. Its content key is kept wrapped (``wrapped_key``) under a
key only the TPM-protected transfer key gives; the one-time private keys are
never stored.

Standard library only.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

#: The largest capsule accepted (an OVMF code image is 4 MiB; headers and signature add
#: a few KiB).
MAX_CAPSULE_BYTES = 32 * 1024 * 1024
#: The largest chunk (its base64 text fits a 1 MiB SOAP body with room to spare).
MAX_CHUNK_BYTES = 512 * 1024
#: How long an upload may wait for its next chunk or its commit.
UPLOAD_LIFETIME = timedelta(hours=1)
#: The AES-GCM tag an encrypted upload adds after the capsule.
TAG_BYTES = 16
#: Uploads one domain may have open at once.
MAX_OPEN_UPLOADS = 4
_SHA256 = re.compile(r"[0-9a-f]{64}")
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


def is_upload_id(text: str) -> bool:
    """Whether ``text`` has the form of an upload id (32 lower-case hex digits)."""
    return _UPLOAD_ID.fullmatch(text) is not None


def is_sha256(text: str) -> bool:
    """Whether ``text`` is a SHA-256 digest in lower-case hex."""
    return _SHA256.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class FirmwareUpload:
    """One upload of one capsule to one domain, by one principal."""

    upload_id: str
    domain_id: str
    principal: str
    #: The capsule's size and SHA-256 (hex), as announced at the beginning.
    size: int
    sha256: str
    created_at: datetime
    expires_at: datetime
    #: Bytes received so far: the offset the next chunk starts at.
    received: int = 0
    #: The content key wrapped for the store (None: the upload is not encrypted).
    wrapped_key: bytes | None = None

    def __post_init__(self) -> None:
        if not is_upload_id(self.upload_id):
            raise ValueError(f"upload id {self.upload_id!r} is not 32 hex digits")
        if not 0 < self.size <= MAX_CAPSULE_BYTES:
            raise ValueError(f"size {self.size} is outside 1..{MAX_CAPSULE_BYTES}")
        if not is_sha256(self.sha256):
            raise ValueError("sha256 is not 64 lower-case hex digits")
        if not 0 <= self.received <= self.total:
            raise ValueError(f"received {self.received} is outside 0..{self.total}")

    @property
    def encrypted(self) -> bool:
        return self.wrapped_key is not None

    @property
    def total(self) -> int:
        """How many bytes travel: the capsule, plus the tag when encrypted."""
        return self.size + (TAG_BYTES if self.encrypted else 0)

    @property
    def complete(self) -> bool:
        return self.received == self.total

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def received_chunk(self, length: int, now: datetime) -> FirmwareUpload:
        """The upload after a chunk of ``length`` bytes at ``received``: its lifetime
        starts again."""
        if not 0 < length <= self.total - self.received:
            raise ValueError(f"a chunk of {length} bytes does not fit: {self.total - self.received}"
                             " bytes remain")
        return dataclasses.replace(self, received=self.received + length,
                                   expires_at=now + UPLOAD_LIFETIME)


def chunk_problem(upload: FirmwareUpload, offset: int, length: int) -> str | None:
    """Why a chunk of ``length`` bytes at ``offset`` cannot be taken, in words (None: it
    can). The offset must be the next one; the chunk must fit the chunk bound and what
    remains of the upload."""
    if offset != upload.received:
        return (f"the chunk starts at offset {offset}, and the next offset of this upload is"
                f" {upload.received}")
    if length == 0:
        return "the chunk is empty"
    if length > MAX_CHUNK_BYTES:
        return f"the chunk has {length} bytes, more than the {MAX_CHUNK_BYTES} a chunk may have"
    remaining = upload.total - upload.received
    if length > remaining:
        return f"the chunk has {length} bytes and only {remaining} remain of this upload"
    return None
