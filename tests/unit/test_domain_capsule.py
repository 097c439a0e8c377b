"""The FMP capsule layout: what the builder writes the parser reads back, and every refusal
names its field. The signature bytes are opaque here (a fake signer): the layout does not
look inside them; tests/integration/test_firmware_capsule_signing.py does."""

from __future__ import annotations

import struct
import uuid

import pytest

from bios_ws.domain.capsule import (
    CAPSULE_FLAGS_INITIATE_RESET,
    CAPSULE_FLAGS_PERSIST_ACROSS_RESET,
    FMP_CAPSULE_GUID,
    PKCS7_CERT_TYPE_GUID,
    UnverifiedCapsule,
    parse_capsule,
)
from bios_ws.domain.capsule_build import CapsuleSpec, build_capsule, signed_content_of
from bios_ws.errors import InvalidCapsule

FIRMWARE_CLASS = uuid.UUID("0f6d58fc-2258-4d27-9e23-d77219b0897c")
IMAGE = b"\x5a" * 100 + b"firmware"
SIGNATURE = b"\x30\x82\x00\x04sig!"  # opaque to the layout
SPEC = CapsuleSpec(image_type_id=FIRMWARE_CLASS, fw_version=0x00010002,
                   lowest_supported_version=0x00010000, monotonic_count=7)

# offsets in a version-3 capsule built from SPEC (edk2's 32-byte capsule header)
CAPSULE_IMAGE_SIZE = 24
FMP = 32
IMAGE_HEADER = 48
UPDATE_IMAGE_SIZE = IMAGE_HEADER + 24
AUTH = 96
WIN_CERT = AUTH + 8
SIG = WIN_CERT + 24
PAYLOAD = SIG + len(SIGNATURE)
IMAGE_AT = PAYLOAD + 16


def fake_sign(content: bytes) -> bytes:
    fake_sign.seen.append(content)  # type: ignore[attr-defined]
    return SIGNATURE


fake_sign.seen = []  # type: ignore[attr-defined]


def build(spec: CapsuleSpec = SPEC, image: bytes = IMAGE) -> bytes:
    return build_capsule(image, spec, fake_sign)


def patched(data: bytes, offset: int, fmt: str, *values: object) -> bytes:
    buffer = bytearray(data)
    struct.pack_into(fmt, buffer, offset, *values)
    return bytes(buffer)


def refusal(data: bytes, field: str, fragment: str = "", **kwargs: int) -> InvalidCapsule:
    with pytest.raises(InvalidCapsule) as caught:
        parse_capsule(data, **kwargs)
    assert caught.value.field == field, caught.value.message
    assert caught.value.attribute == field
    assert fragment in caught.value.message
    return caught.value


def test_a_built_capsule_parses_back_to_what_was_asked() -> None:
    capsule = parse_capsule(build())
    assert isinstance(capsule, UnverifiedCapsule)
    assert capsule.capsule_header.capsule_guid == FMP_CAPSULE_GUID
    assert capsule.capsule_header.header_size == 32
    assert capsule.capsule_header.capsule_image_size == len(build())
    header = capsule.image_header
    assert (header.version, header.update_image_type_id, header.update_image_index) == (
        3, FIRMWARE_CLASS, 1)
    assert header.image_capsule_support == 1
    assert capsule.authentication.monotonic_count == 7
    assert capsule.authentication.cert_type == PKCS7_CERT_TYPE_GUID
    assert capsule.authentication.signature == SIGNATURE
    assert (capsule.payload_header.fw_version,
            capsule.payload_header.lowest_supported_version) == (0x00010002, 0x00010000)
    assert capsule.image == IMAGE


def test_the_signed_content_is_payload_header_image_and_monotonic_count() -> None:
    fake_sign.seen.clear()  # type: ignore[attr-defined]
    capsule = parse_capsule(build())
    expected = b"MSS1" + struct.pack("<III", 16, 0x00010002, 0x00010000) + IMAGE + struct.pack(
        "<Q", 7)
    assert capsule.signed_content() == expected
    assert fake_sign.seen == [expected]  # type: ignore[attr-defined]
    assert signed_content_of(SPEC, IMAGE) == expected


def test_image_header_version_2_round_trips() -> None:
    spec = CapsuleSpec(image_type_id=FIRMWARE_CLASS, fw_version=3, lowest_supported_version=1,
                       monotonic_count=2**64 - 1, image_header_version=2, image_index=2,
                       hardware_instance=9, flags=CAPSULE_FLAGS_PERSIST_ACROSS_RESET
                       | CAPSULE_FLAGS_INITIATE_RESET | 0x1234)
    capsule = parse_capsule(build(spec))
    assert capsule.image_header.version == 2
    assert capsule.image_header.update_hardware_instance == 9
    assert capsule.image_header.update_image_index == 2
    assert capsule.authentication.monotonic_count == 2**64 - 1
    assert capsule.capsule_header.flags == 0x00051234
    assert capsule.signed_content().endswith(b"\xff" * 8)


def test_an_unsigned_capsule_parses_with_an_empty_signature() -> None:
    capsule = parse_capsule(build_capsule(IMAGE, SPEC, lambda content: b""))
    assert capsule.authentication.signature == b""


def test_the_capsule_header_size_is_followed_not_assumed() -> None:
    data = build()
    longer = data[:32] + b"\0" * 16 + data[32:]
    longer = patched(longer, 16, "<I", 48)
    longer = patched(longer, CAPSULE_IMAGE_SIZE, "<I", len(longer))
    assert parse_capsule(longer).image == IMAGE
    exact = data[:28] + data[32:]
    exact = patched(exact, 16, "<I", 28)
    exact = patched(exact, CAPSULE_IMAGE_SIZE, "<I", len(exact))
    assert parse_capsule(exact).image == IMAGE


def cut(data: bytes, length: int) -> bytes:
    """The first ``length`` bytes, with the sizes that would betray the cut made consistent."""
    out = data[:length]
    if length >= CAPSULE_IMAGE_SIZE + 4:
        out = patched(out, CAPSULE_IMAGE_SIZE, "<I", length)
    if length >= UPDATE_IMAGE_SIZE + 4:
        out = patched(out, UPDATE_IMAGE_SIZE, "<I", max(0, length - AUTH))
    return out


@pytest.mark.parametrize(("length", "field", "fragment"), [
    (0, "EFI_CAPSULE_HEADER", "truncated"),
    (27, "EFI_CAPSULE_HEADER", "truncated"),
    (32, "FMP_CAPSULE_HEADER", "truncated"),
    (39, "FMP_CAPSULE_HEADER", "truncated"),
    (44, "FMP_CAPSULE_HEADER.ItemOffsetList", "truncated"),
    (50, "FMP_IMAGE_HEADER.Version", "truncated"),
    (70, "FMP_IMAGE_HEADER", "truncated"),
    (95, "FMP_IMAGE_HEADER", "truncated"),
    (AUTH, "EFI_FIRMWARE_IMAGE_AUTHENTICATION.MonotonicCount", "truncated"),
    (AUTH + 7, "EFI_FIRMWARE_IMAGE_AUTHENTICATION.MonotonicCount", "truncated"),
    (WIN_CERT + 23, "WIN_CERTIFICATE_UEFI_GUID", "truncated"),
    (SIG + 3, "WIN_CERTIFICATE.dwLength", "overruns"),
    (PAYLOAD, "FMP_PAYLOAD_HEADER", "truncated"),
    (PAYLOAD + 15, "FMP_PAYLOAD_HEADER", "truncated"),
    (IMAGE_AT, "image", "no image"),
])
def test_a_capsule_cut_anywhere_is_refused_naming_the_header(length: int, field: str,
                                                              fragment: str) -> None:
    refusal(cut(build(), length), field, fragment)


def test_a_capsule_cut_without_fixing_the_sizes_is_refused_by_its_image_size() -> None:
    refusal(build()[:-1], "EFI_CAPSULE_HEADER.CapsuleImageSize")
    refusal(build() + b"\0", "EFI_CAPSULE_HEADER.CapsuleImageSize")


@pytest.mark.parametrize(("offset", "fmt", "value", "field", "fragment"), [
    (0, "<16s", uuid.uuid4().bytes_le, "EFI_CAPSULE_HEADER.CapsuleGuid", "FMP capsule GUID"),
    (16, "<I", 27, "EFI_CAPSULE_HEADER.HeaderSize", "smaller"),
    (16, "<I", 10_000, "EFI_CAPSULE_HEADER.HeaderSize", "overruns"),
    (20, "<I", 0x0008_0000, "EFI_CAPSULE_HEADER.Flags", "reserved"),
    (20, "<I", CAPSULE_FLAGS_INITIATE_RESET, "EFI_CAPSULE_HEADER.Flags", "PERSIST"),
    (FMP, "<I", 2, "FMP_CAPSULE_HEADER.Version", "2"),
    (FMP + 4, "<H", 1, "FMP_CAPSULE_HEADER.EmbeddedDriverCount", "drivers are refused"),
    (FMP + 6, "<H", 2, "FMP_CAPSULE_HEADER.PayloadItemCount", "exactly one"),
    (FMP + 6, "<H", 0, "FMP_CAPSULE_HEADER.PayloadItemCount", "exactly one"),
    (FMP + 8, "<Q", 24, "FMP_CAPSULE_HEADER.ItemOffsetList", "expected 16"),
    (FMP + 8, "<Q", 2**63, "FMP_CAPSULE_HEADER.ItemOffsetList", "expected 16"),
    (IMAGE_HEADER, "<I", 1, "FMP_IMAGE_HEADER.Version", "2 and 3"),
    (IMAGE_HEADER, "<I", 4, "FMP_IMAGE_HEADER.Version", "2 and 3"),
    (IMAGE_HEADER + 20, "<B", 0, "FMP_IMAGE_HEADER.UpdateImageIndex", "1 or more"),
    (UPDATE_IMAGE_SIZE, "<I", 0xFFFF_FFFF, "FMP_IMAGE_HEADER.UpdateImageSize", "follow"),
    (UPDATE_IMAGE_SIZE, "<I", 10, "FMP_IMAGE_HEADER.UpdateImageSize", "follow"),
    (IMAGE_HEADER + 28, "<I", 4, "FMP_IMAGE_HEADER.UpdateVendorCodeSize", "vendor code"),
    (IMAGE_HEADER + 40, "<Q", 0, "FMP_IMAGE_HEADER.ImageCapsuleSupport", "required"),
    (IMAGE_HEADER + 40, "<Q", 3, "FMP_IMAGE_HEADER.ImageCapsuleSupport", "dependency"),
    (IMAGE_HEADER + 40, "<Q", 5, "FMP_IMAGE_HEADER.ImageCapsuleSupport", "unknown"),
    (WIN_CERT, "<I", 23, "WIN_CERTIFICATE.dwLength", "smaller"),
    (WIN_CERT, "<I", 0xFFFF_FFFF, "WIN_CERTIFICATE.dwLength", "overruns"),
    (WIN_CERT + 4, "<H", 0x0100, "WIN_CERTIFICATE.wRevision", "0x0200"),
    (WIN_CERT + 6, "<H", 0x0002, "WIN_CERTIFICATE.wCertificateType", "0x0ef1"),
    (WIN_CERT + 8, "<16s", uuid.uuid4().bytes_le, "WIN_CERTIFICATE_UEFI_GUID.CertType", "PKCS#7"),
    (PAYLOAD, "<4s", b"MSS2", "FMP_PAYLOAD_HEADER.Signature", "MSS1"),
    (PAYLOAD + 4, "<I", 15, "FMP_PAYLOAD_HEADER.HeaderSize", "smaller"),
    (PAYLOAD + 4, "<I", 10_000, "FMP_PAYLOAD_HEADER.HeaderSize", "overruns"),
    (PAYLOAD + 12, "<I", 0x00020000, "FMP_PAYLOAD_HEADER.LowestSupportedVersion", "above"),
])
def test_a_wrong_field_is_refused_by_name(offset: int, fmt: str, value: object, field: str,
                                          fragment: str) -> None:
    refusal(patched(build(), offset, fmt, value), field, fragment)


def test_a_dwlength_inside_the_signature_moves_the_payload_header() -> None:
    # dwLength consistent with the bytes that remain but shorter than the signature: what
    # follows it is read as the payload header, whose magic then does not match
    refusal(patched(build(), WIN_CERT, "<I", 24 + 2), "FMP_PAYLOAD_HEADER.Signature")


def test_a_payload_header_size_is_followed() -> None:
    data = build()
    data = patched(data, PAYLOAD + 4, "<I", 20)
    assert parse_capsule(data).image == IMAGE[4:]
    assert parse_capsule(data).payload_header_bytes == data[PAYLOAD:PAYLOAD + 20]


def test_an_oversize_capsule_is_refused_before_it_is_read() -> None:
    data = build()
    refusal(data, "capsule", "more than", max_size=len(data) - 1)
    assert parse_capsule(data, max_size=len(data)).image == IMAGE


@pytest.mark.parametrize(("changes", "field"), [
    ({"fw_version": 2**32}, "FMP_PAYLOAD_HEADER.FwVersion"),
    ({"fw_version": -1}, "FMP_PAYLOAD_HEADER.FwVersion"),
    ({"lowest_supported_version": 2**32}, "FMP_PAYLOAD_HEADER.LowestSupportedVersion"),
    ({"monotonic_count": 2**64}, "EFI_FIRMWARE_IMAGE_AUTHENTICATION.MonotonicCount"),
    ({"image_index": 0}, "FMP_IMAGE_HEADER.UpdateImageIndex"),
    ({"image_header_version": 1}, "FMP_IMAGE_HEADER.Version"),
    ({"fw_version": 1, "lowest_supported_version": 2},
     "FMP_PAYLOAD_HEADER.LowestSupportedVersion"),
])
def test_the_builder_refuses_values_the_layout_cannot_hold(changes: dict[str, int],
                                                           field: str) -> None:
    values: dict[str, object] = {"image_type_id": FIRMWARE_CLASS, "fw_version": 5,
                                 "lowest_supported_version": 1, "monotonic_count": 1}
    values.update(changes)
    with pytest.raises(InvalidCapsule) as caught:
        CapsuleSpec(**values)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_the_builder_refuses_an_empty_image() -> None:
    with pytest.raises(InvalidCapsule, match="image"):
        build(image=b"")
