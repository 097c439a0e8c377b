"""The firmware volume check a simulated machine's trial boot uses, against the real OVMF code
image of this machine kind and damaged copies of it."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from bios_ws.domain.firmware_volume import MIN_HEADER_LENGTH, is_firmware_volume

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")


@pytest.fixture(scope="module")
def ovmf() -> bytes:
    """The installation's OVMF code (`make test` installs the ovmf package)."""
    return OVMF_CODE.read_bytes()


def _changed(image: bytes, offset: int, data: bytes) -> bytes:
    damaged = bytearray(image)
    damaged[offset:offset + len(data)] = data
    return bytes(damaged)


def _with_checksum(header: bytearray) -> bytes:
    """``header`` with its checksum field set so that its words sum to 0."""
    length = struct.unpack_from("<H", header, 0x30)[0]
    struct.pack_into("<H", header, 0x32, 0)
    total = sum(struct.unpack_from(f"<{length // 2}H", header)) & 0xFFFF
    struct.pack_into("<H", header, 0x32, (0x10000 - total) & 0xFFFF)
    return bytes(header)


def test_the_ovmf_code_image_starts_with_a_firmware_volume(ovmf: bytes) -> None:
    assert ovmf[0x28:0x2C] == b"_FVH"
    assert is_firmware_volume(ovmf) is None
    assert is_firmware_volume(ovmf[:0x348000]) is None  # exactly its first volume


def test_random_bytes_are_no_firmware_volume(ovmf: bytes) -> None:
    noise = random.Random(13).randbytes(len(ovmf))
    assert "no firmware volume signature" in (is_firmware_volume(noise) or "")


@pytest.mark.parametrize(("offset", "data", "why"), [
    (0x28, b"_FVX", "no firmware volume signature"),
    (0x32, b"\x00\x00", "checksum does not sum to 0"),  # the stored checksum zeroed
    (0x10, b"\xff", "checksum does not sum to 0"),  # the GUID changed, the sum not fixed
    (0x30, struct.pack("<H", 71), "header length 71"),
    (0x30, struct.pack("<H", 8), "header length 8"),
    (0x20, struct.pack("<Q", 70), "header length 72"),  # longer than the volume
    (0x20, struct.pack("<Q", 1 << 40), "claims 1099511627776 bytes"),
])
def test_a_damaged_header_says_why(ovmf: bytes, offset: int, data: bytes, why: str) -> None:
    reason = is_firmware_volume(_changed(ovmf, offset, data))
    assert reason is not None and why in reason


def test_a_volume_longer_than_the_image_is_refused(ovmf: bytes) -> None:
    reason = is_firmware_volume(ovmf[:0x348000 - 1])
    assert reason is not None and "claims 3440640 bytes" in reason


def test_a_checksum_fixed_after_a_change_passes_but_a_broken_block_map_does_not(
        ovmf: bytes) -> None:
    header = bytearray(ovmf[:72])
    header[0x10] ^= 0xFF  # another file system GUID, the checksum made right again
    assert is_firmware_volume(_with_checksum(header) + ovmf[72:]) is None
    header[64:72] = struct.pack("<II", 1, 4096)  # no (0, 0) at the end of the block map
    reason = is_firmware_volume(_with_checksum(header) + ovmf[72:])
    assert reason is not None and "block map" in reason


@pytest.mark.parametrize("size", [0, 1, 0x2C, MIN_HEADER_LENGTH - 1])
def test_a_short_image_is_refused(ovmf: bytes, size: int) -> None:
    reason = is_firmware_volume(ovmf[:size])
    assert reason is not None and "fewer than a firmware volume header" in reason
