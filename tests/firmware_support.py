"""Real capsules for the firmware update tests: a signer PKI valid at a given time, firmware
volume images a machine boots (or damaged ones it does not), and capsules built with the
project's own builder and signer."""

from __future__ import annotations

import hashlib
import struct
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from bios_ws.domain.capsule_build import CapsuleSpec, build_capsule
from bios_ws.domain.firmware_update import SYSTEM_FIRMWARE_CLASS
from bios_ws.firmware.signing import CapsuleSigningKey
from tests.firmware_pki import Issued, issue

#: EFI_FIRMWARE_FILE_SYSTEM2_GUID, the file system of an FV (stored little-endian).
_FFS2 = uuid.UUID("8c8ce578-8a3d-4f1c-9935-896185c32dd3")
_BLOCK = 4096


def firmware_volume(size: int = 4 * _BLOCK, *, tag: bytes = b"") -> bytes:
    """A UEFI firmware volume of ``size`` bytes: a valid EFI_FIRMWARE_VOLUME_HEADER (its
    16-bit checksum sums to 0), one block map entry and its terminator, then 0xFF (with
    ``tag`` after the header, so that two images differ)."""
    header = bytearray(struct.pack("<16s16sQ4sIHHHBB", bytes(16), _FFS2.bytes_le, size,
                                   b"_FVH", 0x0004FEFF, 0x48, 0, 0, 0, 2))
    header += struct.pack("<II", size // _BLOCK, _BLOCK) + struct.pack("<II", 0, 0)
    checksum = (-sum(struct.unpack(f"<{len(header) // 2}H", header))) & 0xFFFF
    struct.pack_into("<H", header, 0x32, checksum)
    body = tag + b"\xff" * (size - len(header) - len(tag))
    return bytes(header) + body


def broken_image(size: int = 4 * _BLOCK) -> bytes:
    """Bytes of an image's size that are no firmware volume (a machine cannot boot them)."""
    return hashlib.sha256(b"broken").digest() * (size // 32)


@dataclass(frozen=True)
class Signers:
    """A root the admin trusts, a capsule signer it issued, and a stranger's signer."""

    root: Issued
    signer: Issued
    stranger: Issued

    def key(self, *, stranger: bool = False) -> CapsuleSigningKey:
        issued = self.stranger if stranger else self.signer
        return CapsuleSigningKey(issued.certificate, issued.key)


def make_signers(now: datetime) -> Signers:
    """Certificates valid from a day before ``now`` for a year."""
    window = {"not_before": now - timedelta(days=1), "not_after": now + timedelta(days=365)}
    root = issue("Update Root", None, ca=True, **window)
    other = issue("Stranger Root", None, ca=True, **window)
    return Signers(root, issue("Update Signer", root, ca=False, **window),
                   issue("Stranger Signer", other, ca=False, **window))


def capsule(signers: Signers, fw_version: int, *, lowest: int | None = None,
            count: int = 1, image: bytes | None = None, stranger: bool = False,
            firmware_class: uuid.UUID = SYSTEM_FIRMWARE_CLASS) -> bytes:
    """A signed capsule of ``image`` (a bootable firmware volume by default)."""
    spec = CapsuleSpec(image_type_id=firmware_class, fw_version=fw_version,
                       lowest_supported_version=fw_version if lowest is None else lowest,
                       monotonic_count=count)
    body = image if image is not None else firmware_volume(tag=f"v{fw_version}".encode())
    return build_capsule(body, spec, signers.key(stranger=stranger).sign)
