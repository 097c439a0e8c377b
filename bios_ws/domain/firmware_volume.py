"""Whether an image starts with a UEFI firmware volume: what a simulated machine counts as
firmware it can boot (issue 13: a trial boot of a new image).

An OVMF code image (``OVMF_CODE_4M.fd``) starts with its first firmware volume, whose
header (PI specification, volume 3, ``EFI_FIRMWARE_VOLUME_HEADER``) is, little-endian::

    0x00  ZeroVector[16]
    0x10  FileSystemGuid[16]
    0x20  FvLength         u64   the whole volume, header included
    0x28  Signature        u32   "_FVH"
    0x2c  Attributes       u32
    0x30  HeaderLength     u16   the header with its block map
    0x32  Checksum         u16   the 16-bit words of the header sum to 0
    0x34  ExtHeaderOffset  u16
    0x36  Reserved         u8
    0x37  Revision         u8
    0x38  BlockMap[]       (NumBlocks u32, Length u32) pairs, ended by (0, 0)

Standard library only.
"""

from __future__ import annotations

import struct

FV_SIGNATURE = b"_FVH"
_FIXED = struct.Struct("<16s16sQ4sIHHHBB")
#: The fixed part, and the block map's terminating (0, 0) entry.
_BLOCK_ENTRY = 8
MIN_HEADER_LENGTH = _FIXED.size + _BLOCK_ENTRY


def is_firmware_volume(image: bytes) -> str | None:
    """Why ``image`` does not start with a sane firmware volume header, in words; None when
    it does (the signature, a header length that fits, a volume length that fits the image,
    and a header checksum that sums to 0)."""
    if len(image) < MIN_HEADER_LENGTH:
        return (f"the image has {len(image)} bytes, fewer than a firmware volume header"
                f" ({MIN_HEADER_LENGTH})")
    _, _, fv_length, signature, _, header_length, _, _, _, _ = _FIXED.unpack_from(image)
    if signature != FV_SIGNATURE:
        return f"no firmware volume signature {FV_SIGNATURE!r} at offset 0x28 (found {signature!r})"
    if header_length % 2 or not MIN_HEADER_LENGTH <= header_length <= min(fv_length, len(image)):
        return (f"the firmware volume header length {header_length} is not an even number from"
                f" {MIN_HEADER_LENGTH} to the volume's length")
    if fv_length > len(image):
        return (f"the firmware volume claims {fv_length} bytes and the image has only"
                f" {len(image)}")
    if sum(struct.unpack_from(f"<{header_length // 2}H", image)) & 0xFFFF:
        return "the firmware volume header checksum does not sum to 0"
    if image[header_length - _BLOCK_ENTRY:header_length] != bytes(_BLOCK_ENTRY):
        return "the firmware volume's block map does not end where its header does"
    return None
