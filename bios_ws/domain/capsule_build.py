"""Writing an FMP capsule, as edk2's GenerateCapsule does.

The layout is the one ``bios_ws.domain.capsule`` parses: a 32-byte capsule
header, one payload, image header version 3 by default (version 2 on request),
the authentication header, the 'MSS1' payload header, the image. The detached
PKCS#7 signature comes from a ``Signer`` callback given the signed content
(payload header || image || MonotonicCount), so this module stays pure.

Standard library only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from bios_ws.domain.capsule import (
    CAPSULE_HEADER,
    CAPSULE_SUPPORT_AUTHENTICATION,
    FMP_CAPSULE_GUID,
    FMP_CAPSULE_HEADER_VERSION,
    FMP_HEADER,
    IMAGE_HEADER_V2,
    IMAGE_HEADER_V3,
    IMAGE_HEADER_VERSIONS,
    ITEM_OFFSET,
    MONOTONIC_COUNT,
    PAYLOAD_HEADER,
    PAYLOAD_SIGNATURE,
    PKCS7_CERT_TYPE_GUID,
    WIN_CERT_REVISION,
    WIN_CERT_TYPE_EFI_GUID,
    WIN_CERTIFICATE_UEFI_GUID,
)
from bios_ws.errors import InvalidCapsule

#: Given the signed content, returns a DER detached PKCS#7 SignedData over it.
Signer = Callable[[bytes], bytes]

#: The capsule header size edk2 writes (the struct is 28 bytes, padded to 32).
EDK2_CAPSULE_HEADER_SIZE = 32
UINT8_MAX = 0xFF
UINT32_MAX = 0xFFFF_FFFF
UINT64_MAX = 0xFFFF_FFFF_FFFF_FFFF


@dataclass(frozen=True, slots=True)
class CapsuleSpec:
    """What a capsule says about its image; everything but the image and the signature."""

    image_type_id: uuid.UUID
    fw_version: int
    lowest_supported_version: int
    monotonic_count: int
    image_index: int = 1
    hardware_instance: int = 0
    image_header_version: int = 3
    flags: int = 0

    def __post_init__(self) -> None:
        _in_range("FMP_PAYLOAD_HEADER.FwVersion", self.fw_version, UINT32_MAX)
        _in_range("FMP_PAYLOAD_HEADER.LowestSupportedVersion",
                  self.lowest_supported_version, UINT32_MAX)
        _in_range("EFI_FIRMWARE_IMAGE_AUTHENTICATION.MonotonicCount",
                  self.monotonic_count, UINT64_MAX)
        _in_range("FMP_IMAGE_HEADER.UpdateImageIndex", self.image_index, UINT8_MAX, low=1)
        _in_range("FMP_IMAGE_HEADER.UpdateHardwareInstance", self.hardware_instance, UINT64_MAX)
        _in_range("EFI_CAPSULE_HEADER.Flags", self.flags, UINT32_MAX)
        if self.image_header_version not in IMAGE_HEADER_VERSIONS:
            raise InvalidCapsule("FMP_IMAGE_HEADER.Version",
                                 f"{self.image_header_version}, only versions 2 and 3 are written")
        if self.lowest_supported_version > self.fw_version:
            raise InvalidCapsule("FMP_PAYLOAD_HEADER.LowestSupportedVersion",
                                 f"{self.lowest_supported_version} is above the image's own"
                                 f" FwVersion {self.fw_version}")


def signed_content_of(spec: CapsuleSpec, image: bytes) -> bytes:
    """payload header || image || MonotonicCount: what the signer signs."""
    return _payload_header(spec) + image + MONOTONIC_COUNT.pack(spec.monotonic_count)


def build_capsule(image: bytes, spec: CapsuleSpec, sign: Signer) -> bytes:
    """The capsule for ``image`` described by ``spec``, its signature made by ``sign``."""
    if not image:
        raise InvalidCapsule("image", "the image is empty")
    payload_header = _payload_header(spec)
    signature = sign(payload_header + image + MONOTONIC_COUNT.pack(spec.monotonic_count))
    certificate = WIN_CERTIFICATE_UEFI_GUID.pack(
        WIN_CERTIFICATE_UEFI_GUID.size + len(signature), WIN_CERT_REVISION,
        WIN_CERT_TYPE_EFI_GUID, PKCS7_CERT_TYPE_GUID.bytes_le) + signature
    payload = MONOTONIC_COUNT.pack(spec.monotonic_count) + certificate + payload_header + image
    _in_range("FMP_IMAGE_HEADER.UpdateImageSize", len(payload), UINT32_MAX)
    common = (spec.image_header_version, spec.image_type_id.bytes_le, spec.image_index,
              len(payload), 0, spec.hardware_instance)
    if spec.image_header_version == 3:
        image_header = IMAGE_HEADER_V3.pack(*common, CAPSULE_SUPPORT_AUTHENTICATION)
    else:
        image_header = IMAGE_HEADER_V2.pack(*common)
    offset = FMP_HEADER.size + ITEM_OFFSET.size
    fmp = (FMP_HEADER.pack(FMP_CAPSULE_HEADER_VERSION, 0, 1) + ITEM_OFFSET.pack(offset)
           + image_header + payload)
    total = EDK2_CAPSULE_HEADER_SIZE + len(fmp)
    _in_range("EFI_CAPSULE_HEADER.CapsuleImageSize", total, UINT32_MAX)
    header = CAPSULE_HEADER.pack(FMP_CAPSULE_GUID.bytes_le, EDK2_CAPSULE_HEADER_SIZE,
                                 spec.flags, total)
    padding = bytes(EDK2_CAPSULE_HEADER_SIZE - CAPSULE_HEADER.size)
    return header + padding + fmp


def _payload_header(spec: CapsuleSpec) -> bytes:
    return PAYLOAD_HEADER.pack(PAYLOAD_SIGNATURE, PAYLOAD_HEADER.size, spec.fw_version,
                               spec.lowest_supported_version)


def _in_range(field: str, value: int, high: int, *, low: int = 0) -> None:
    if not low <= value <= high:
        raise InvalidCapsule(field, f"{value} is outside {low}..{high}")
