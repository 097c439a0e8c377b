"""Signed UEFI FMP capsules: the layout, a strict parser, and what "verified" means.

A capsule, outermost first (all little-endian; UEFI "Firmware Update and
Reporting", edk2 ``MdePkg/Include/Guid/FmpCapsule.h``)::

    EFI_CAPSULE_HEADER         CapsuleGuid (FMP), HeaderSize (followed), Flags, CapsuleImageSize
    FMP capsule header         Version 1, EmbeddedDriverCount 0, PayloadItemCount 1, offsets
    FMP image header (v2/v3)   UpdateImageTypeId, UpdateImageIndex, UpdateImageSize, ...
    EFI_FIRMWARE_IMAGE_AUTHENTICATION   MonotonicCount + WIN_CERTIFICATE_UEFI_GUID (PKCS#7)
    FMP payload header         'MSS1', HeaderSize, FwVersion, LowestSupportedVersion
    image                      the firmware itself

The parser accepts exactly that and nothing more (one payload, no embedded
drivers, no vendor code, no dependency section, no byte outside a structure),
and every refusal is an ``InvalidCapsule`` naming the field. What it returns is
an ``UnverifiedCapsule``: nothing in it is to be trusted until a
``CapsuleVerifier`` has checked the signature over ``signed_content()`` and
returned a ``VerifiedCapsule``. Building is in ``bios_ws.domain.capsule_build``.

Standard library only.
"""

from __future__ import annotations

import abc
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bios_ws.errors import InvalidCapsule

#: EFI_FIRMWARE_MANAGEMENT_CAPSULE_ID_GUID: the CapsuleGuid of every FMP capsule.
FMP_CAPSULE_GUID = uuid.UUID("6dcbd5ed-e82d-4c44-bda1-7194199ad92a")
#: EFI_CERT_TYPE_PKCS7_GUID: the CertType of a WIN_CERTIFICATE_UEFI_GUID holding PKCS#7.
PKCS7_CERT_TYPE_GUID = uuid.UUID("4aafd29d-68df-49ee-8aa9-347d375665a7")

CAPSULE_FLAGS_PERSIST_ACROSS_RESET = 0x0001_0000
CAPSULE_FLAGS_POPULATE_SYSTEM_TABLE = 0x0002_0000
CAPSULE_FLAGS_INITIATE_RESET = 0x0004_0000
_DEFINED_FLAGS = (0xFFFF | CAPSULE_FLAGS_PERSIST_ACROSS_RESET
                  | CAPSULE_FLAGS_POPULATE_SYSTEM_TABLE | CAPSULE_FLAGS_INITIATE_RESET)

CAPSULE_SUPPORT_AUTHENTICATION = 0x1
CAPSULE_SUPPORT_DEPENDENCY = 0x2

FMP_CAPSULE_HEADER_VERSION = 1
IMAGE_HEADER_VERSIONS = (2, 3)
WIN_CERT_REVISION = 0x0200
WIN_CERT_TYPE_EFI_GUID = 0x0EF1
PAYLOAD_SIGNATURE = b"MSS1"

CAPSULE_HEADER = struct.Struct("<16sIII")        # 28 bytes; edk2 writes HeaderSize 32
FMP_HEADER = struct.Struct("<IHH")
ITEM_OFFSET = struct.Struct("<Q")
IMAGE_HEADER_V2 = struct.Struct("<I16sB3xIIQ")   # 40 bytes
IMAGE_HEADER_V3 = struct.Struct("<I16sB3xIIQQ")  # 48 bytes
MONOTONIC_COUNT = struct.Struct("<Q")
WIN_CERTIFICATE_UEFI_GUID = struct.Struct("<IHH16s")  # dwLength covers these 24 bytes + data
PAYLOAD_HEADER = struct.Struct("<4sIII")         # 16 bytes

#: The default upper bound of a whole capsule.
DEFAULT_MAX_CAPSULE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CapsuleHeader:
    """EFI_CAPSULE_HEADER."""

    capsule_guid: uuid.UUID
    header_size: int
    flags: int
    capsule_image_size: int


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """EFI_FIRMWARE_MANAGEMENT_CAPSULE_IMAGE_HEADER, version 2 or 3."""

    version: int
    update_image_type_id: uuid.UUID
    update_image_index: int
    update_image_size: int
    update_vendor_code_size: int
    update_hardware_instance: int
    image_capsule_support: int  # 0 in version 2, which has no such field


@dataclass(frozen=True, slots=True)
class ImageAuthentication:
    """EFI_FIRMWARE_IMAGE_AUTHENTICATION: MonotonicCount and a WIN_CERTIFICATE_UEFI_GUID."""

    monotonic_count: int
    revision: int
    certificate_type: int
    cert_type: uuid.UUID
    signature: bytes  # DER PKCS#7 SignedData, detached; may be empty (then: unsigned)


@dataclass(frozen=True, slots=True)
class PayloadHeader:
    """FMP_PAYLOAD_HEADER (edk2): 'MSS1', HeaderSize, FwVersion, LowestSupportedVersion."""

    header_size: int
    fw_version: int
    lowest_supported_version: int


@dataclass(frozen=True, slots=True)
class UnverifiedCapsule:
    """A capsule whose layout is valid and whose signature has NOT been checked."""

    capsule_header: CapsuleHeader
    image_header: ImageHeader
    authentication: ImageAuthentication
    payload_header: PayloadHeader
    image: bytes
    payload_header_bytes: bytes  # exactly as they were signed (HeaderSize bytes)

    def signed_content(self) -> bytes:
        """payload header || image || MonotonicCount (8 bytes LE): what the signature covers."""
        return (self.payload_header_bytes + self.image
                + MONOTONIC_COUNT.pack(self.authentication.monotonic_count))


@dataclass(frozen=True, slots=True)
class CapsuleSigner:
    """Who signed a verified capsule: the signer certificate, described."""

    subject: str
    issuer: str
    serial_number: int
    sha256_fingerprint: str  # hex of the DER certificate's SHA-256


@dataclass(frozen=True, slots=True)
class VerifiedCapsule:
    """A capsule whose signature and signer chain a ``CapsuleVerifier`` has checked.

    Only verifiers build these; everything else receives them."""

    capsule: UnverifiedCapsule
    signer: CapsuleSigner
    verified_at: datetime

    @property
    def firmware_class(self) -> uuid.UUID:
        return self.capsule.image_header.update_image_type_id

    @property
    def fw_version(self) -> int:
        return self.capsule.payload_header.fw_version

    @property
    def lowest_supported_version(self) -> int:
        return self.capsule.payload_header.lowest_supported_version

    @property
    def monotonic_count(self) -> int:
        return self.capsule.authentication.monotonic_count

    @property
    def image(self) -> bytes:
        return self.capsule.image


class CapsuleVerifier(abc.ABC):
    """The port that turns an ``UnverifiedCapsule`` into a ``VerifiedCapsule`` or refuses."""

    @abc.abstractmethod
    def verify(self, capsule: UnverifiedCapsule, trust_anchors: Sequence[bytes], *,
               now: datetime) -> VerifiedCapsule:
        """Check the signature over ``capsule.signed_content()`` and the signer's chain to one
        of ``trust_anchors`` (DER certificates) at ``now``; raise ``CapsuleNotTrusted``."""


def parse_capsule(data: bytes, *, max_size: int = DEFAULT_MAX_CAPSULE_BYTES
                  ) -> UnverifiedCapsule:
    """The capsule in ``data``, checked field by field; ``InvalidCapsule`` names what is wrong."""
    if len(data) > max_size:
        raise InvalidCapsule("capsule", f"{len(data)} bytes, more than the {max_size} allowed")
    header = _capsule_header(data)
    body = memoryview(data)[header.header_size:]
    image_header, item = _fmp_item(body)
    authentication, rest = _authentication(item)
    payload_header, payload_header_bytes, image = _payload(rest)
    return UnverifiedCapsule(header, image_header, authentication, payload_header,
                             image, payload_header_bytes)


def _take(data: memoryview, size: int, field: str) -> memoryview:
    if len(data) < size:
        raise InvalidCapsule(field, f"truncated: {size} bytes needed, {len(data)} remain")
    return data[:size]


def _capsule_header(data: bytes) -> CapsuleHeader:
    view = memoryview(data)
    raw = _take(view, CAPSULE_HEADER.size, "EFI_CAPSULE_HEADER")
    guid, header_size, flags, image_size = CAPSULE_HEADER.unpack(raw)
    capsule_guid = uuid.UUID(bytes_le=guid)
    if capsule_guid != FMP_CAPSULE_GUID:
        raise InvalidCapsule("EFI_CAPSULE_HEADER.CapsuleGuid",
                             f"{capsule_guid} is not the FMP capsule GUID {FMP_CAPSULE_GUID}")
    if header_size < CAPSULE_HEADER.size:
        raise InvalidCapsule("EFI_CAPSULE_HEADER.HeaderSize",
                             f"{header_size} is smaller than the header ({CAPSULE_HEADER.size})")
    if image_size != len(data):
        raise InvalidCapsule("EFI_CAPSULE_HEADER.CapsuleImageSize",
                             f"{image_size} but the capsule has {len(data)} bytes")
    if header_size > image_size:
        raise InvalidCapsule("EFI_CAPSULE_HEADER.HeaderSize",
                             f"{header_size} overruns the capsule ({image_size} bytes)")
    if flags & ~_DEFINED_FLAGS:
        raise InvalidCapsule("EFI_CAPSULE_HEADER.Flags", f"reserved bits set in {flags:#010x}")
    needs_persist = CAPSULE_FLAGS_INITIATE_RESET | CAPSULE_FLAGS_POPULATE_SYSTEM_TABLE
    if flags & needs_persist and not flags & CAPSULE_FLAGS_PERSIST_ACROSS_RESET:
        raise InvalidCapsule("EFI_CAPSULE_HEADER.Flags",
                             f"{flags:#010x}: INITIATE_RESET and POPULATE_SYSTEM_TABLE need"
                             " PERSIST_ACROSS_RESET")
    return CapsuleHeader(capsule_guid, header_size, flags, image_size)


def _fmp_item(body: memoryview) -> tuple[ImageHeader, memoryview]:
    """The FMP capsule header's one payload item: its image header and UpdateImageSize bytes."""
    version, drivers, payloads = FMP_HEADER.unpack(
        _take(body, FMP_HEADER.size, "FMP_CAPSULE_HEADER"))
    if version != FMP_CAPSULE_HEADER_VERSION:
        raise InvalidCapsule("FMP_CAPSULE_HEADER.Version",
                             f"{version}, only version {FMP_CAPSULE_HEADER_VERSION} is known")
    if drivers != 0:
        raise InvalidCapsule("FMP_CAPSULE_HEADER.EmbeddedDriverCount",
                             f"{drivers}: embedded drivers are refused (they would run code"
                             " from the capsule)")
    if payloads != 1:
        raise InvalidCapsule("FMP_CAPSULE_HEADER.PayloadItemCount",
                             f"{payloads}: exactly one payload is accepted")
    list_end = FMP_HEADER.size + ITEM_OFFSET.size
    (offset,) = ITEM_OFFSET.unpack(
        _take(body[FMP_HEADER.size:], ITEM_OFFSET.size, "FMP_CAPSULE_HEADER.ItemOffsetList"))
    if offset != list_end:
        raise InvalidCapsule("FMP_CAPSULE_HEADER.ItemOffsetList",
                             f"payload offset {offset}, expected {list_end} (right after the"
                             " offset list)")
    item = body[list_end:]
    version_raw = _take(item, 4, "FMP_IMAGE_HEADER.Version")
    (image_version,) = struct.unpack("<I", version_raw)
    if image_version not in IMAGE_HEADER_VERSIONS:
        raise InvalidCapsule("FMP_IMAGE_HEADER.Version",
                             f"{image_version}, only versions 2 and 3 are accepted")
    layout = IMAGE_HEADER_V3 if image_version == 3 else IMAGE_HEADER_V2
    fields = layout.unpack(_take(item, layout.size, "FMP_IMAGE_HEADER"))
    _, type_id, index, image_size, vendor_size, hardware = fields[:6]
    support = fields[6] if image_version == 3 else 0
    header = ImageHeader(image_version, uuid.UUID(bytes_le=type_id), index, image_size,
                         vendor_size, hardware, support)
    if index < 1:
        raise InvalidCapsule("FMP_IMAGE_HEADER.UpdateImageIndex", f"{index}, must be 1 or more")
    if vendor_size != 0:
        raise InvalidCapsule("FMP_IMAGE_HEADER.UpdateVendorCodeSize",
                             f"{vendor_size}: vendor code is refused (no signature covers it)")
    if image_version == 3:
        if support & ~(CAPSULE_SUPPORT_AUTHENTICATION | CAPSULE_SUPPORT_DEPENDENCY):
            raise InvalidCapsule("FMP_IMAGE_HEADER.ImageCapsuleSupport",
                                 f"unknown bits in {support:#x}")
        if support & CAPSULE_SUPPORT_DEPENDENCY:
            raise InvalidCapsule("FMP_IMAGE_HEADER.ImageCapsuleSupport",
                                 "a dependency section is not supported")
        if not support & CAPSULE_SUPPORT_AUTHENTICATION:
            raise InvalidCapsule("FMP_IMAGE_HEADER.ImageCapsuleSupport",
                                 "authentication is required")
    remaining = len(item) - layout.size
    if image_size != remaining:
        raise InvalidCapsule("FMP_IMAGE_HEADER.UpdateImageSize",
                             f"{image_size} but {remaining} bytes follow the image header")
    return header, item[layout.size:]


def _authentication(item: memoryview) -> tuple[ImageAuthentication, memoryview]:
    (count,) = MONOTONIC_COUNT.unpack(
        _take(item, MONOTONIC_COUNT.size, "EFI_FIRMWARE_IMAGE_AUTHENTICATION.MonotonicCount"))
    cert = item[MONOTONIC_COUNT.size:]
    length, revision, cert_type_id, cert_type = WIN_CERTIFICATE_UEFI_GUID.unpack(
        _take(cert, WIN_CERTIFICATE_UEFI_GUID.size, "WIN_CERTIFICATE_UEFI_GUID"))
    if length < WIN_CERTIFICATE_UEFI_GUID.size:
        raise InvalidCapsule("WIN_CERTIFICATE.dwLength",
                             f"{length} is smaller than the certificate header"
                             f" ({WIN_CERTIFICATE_UEFI_GUID.size})")
    if length > len(cert):
        raise InvalidCapsule("WIN_CERTIFICATE.dwLength",
                             f"{length} overruns the payload ({len(cert)} bytes remain)")
    if revision != WIN_CERT_REVISION:
        raise InvalidCapsule("WIN_CERTIFICATE.wRevision",
                             f"{revision:#06x}, expected {WIN_CERT_REVISION:#06x}")
    if cert_type_id != WIN_CERT_TYPE_EFI_GUID:
        raise InvalidCapsule("WIN_CERTIFICATE.wCertificateType",
                             f"{cert_type_id:#06x}, expected {WIN_CERT_TYPE_EFI_GUID:#06x}"
                             " (WIN_CERT_TYPE_EFI_GUID)")
    cert_guid = uuid.UUID(bytes_le=cert_type)
    if cert_guid != PKCS7_CERT_TYPE_GUID:
        raise InvalidCapsule("WIN_CERTIFICATE_UEFI_GUID.CertType",
                             f"{cert_guid} is not the PKCS#7 type {PKCS7_CERT_TYPE_GUID}")
    signature = bytes(cert[WIN_CERTIFICATE_UEFI_GUID.size:length])
    return (ImageAuthentication(count, revision, cert_type_id, cert_guid, signature),
            cert[length:])


def _payload(rest: memoryview) -> tuple[PayloadHeader, bytes, bytes]:
    magic, header_size, fw_version, lowest = PAYLOAD_HEADER.unpack(
        _take(rest, PAYLOAD_HEADER.size, "FMP_PAYLOAD_HEADER"))
    if magic != PAYLOAD_SIGNATURE:
        raise InvalidCapsule("FMP_PAYLOAD_HEADER.Signature",
                             f"{bytes(magic)!r}, expected {PAYLOAD_SIGNATURE!r}")
    if header_size < PAYLOAD_HEADER.size:
        raise InvalidCapsule("FMP_PAYLOAD_HEADER.HeaderSize",
                             f"{header_size} is smaller than the header ({PAYLOAD_HEADER.size})")
    if header_size > len(rest):
        raise InvalidCapsule("FMP_PAYLOAD_HEADER.HeaderSize",
                             f"{header_size} overruns the payload ({len(rest)} bytes remain)")
    if lowest > fw_version:
        raise InvalidCapsule("FMP_PAYLOAD_HEADER.LowestSupportedVersion",
                             f"{lowest} is above the image's own FwVersion {fw_version}")
    image = bytes(rest[header_size:])
    if not image:
        raise InvalidCapsule("image", "the capsule carries no image bytes")
    return (PayloadHeader(header_size, fw_version, lowest), bytes(rest[:header_size]), image)
