"""Structural checks of an OVMF variable store, before every boot.

The store (``vars.fd``) is one EFI firmware volume (PI spec, volume 3,
``EFI_FIRMWARE_VOLUME_HEADER``) whose file system GUID is
``EFI_SYSTEM_NV_DATA_FV_GUID``, followed by edk2's ``VARIABLE_STORE_HEADER``
(``MdeModulePkg/Include/Guid/VariableFormat.h``). edk2 itself refuses a store
whose volume header has a wrong revision, signature, length or checksum
(``OvmfPkg/QemuFlashFvbServicesRuntimeDxe``, ``ValidateFvHeader``); this module
checks the same, and the variable store header after it, so a damaged file is
refused with its reason instead of booting a firmware that silently reformats it.

Layout (little endian)::

    0   ZeroVector[16]
    16  FileSystemGuid          fff12b8d-7696-4c8b-a985-2747075b4f50
    32  FvLength     u64        the whole file
    40  Signature    u32        "_FVH"
    44  Attributes   u32
    48  HeaderLength u16        even; block map included; the 16-bit sum of the header is 0
    50  Checksum     u16
    52  ExtHeaderOffset u16, Reserved u8, Revision u8 (2)
    56  BlockMap[]   {NumBlocks u32, Length u32} ... {0, 0}
    HeaderLength: VARIABLE_STORE_HEADER
        Signature GUID (authenticated aaf32c78-947b-439a-a180-2e144ec37792, or plain
        ddcf3616-3275-4164-98b6-fe85707ffe7d), Size u32, Format u8 (0x5a: formatted),
        State u8 (0xfe: healthy), Reserved u16, Reserved1 u32
"""

from __future__ import annotations

import os
import struct
import uuid
from pathlib import Path

from bios_ws.errors import MachineError

NV_DATA_FV_GUID = uuid.UUID("fff12b8d-7696-4c8b-a985-2747075b4f50")
AUTHENTICATED_VARIABLE_GUID = uuid.UUID("aaf32c78-947b-439a-a180-2e144ec37792")
VARIABLE_GUID = uuid.UUID("ddcf3616-3275-4164-98b6-fe85707ffe7d")
FVH_SIGNATURE = b"_FVH"
FVH_REVISION = 2
VARIABLE_STORE_FORMATTED = 0x5A
VARIABLE_STORE_HEALTHY = 0xFE
#: The fixed part of the volume header, and the smallest header with a one-entry block map.
_FV_FIXED = 56
_FV_MIN_HEADER = _FV_FIXED + 16
_STORE_HEADER = 28
#: No OVMF store is larger (the 4 MiB build's is 528 KiB).
MAX_STORE_BYTES = 16 * 1024 * 1024


class DamagedStore(ValueError):
    """The bytes are not an OVMF variable store; the message says why."""


def check_store(data: bytes, *, expected_size: int) -> None:
    """Raise ``DamagedStore`` unless ``data`` is a structurally sound variable store of
    ``expected_size`` bytes (the size of its template)."""
    if len(data) != expected_size:
        raise DamagedStore(f"it is {len(data)} bytes long, its template {expected_size}")
    if len(data) < _FV_MIN_HEADER + _STORE_HEADER:
        raise DamagedStore("it is too short for a firmware volume")
    (fv_length, signature, _attributes, header_length, _checksum, _ext_offset,
     revision) = struct.unpack_from("<Q4sIHHHxB", data, 32)
    if signature != FVH_SIGNATURE:
        raise DamagedStore(f"no firmware volume signature at offset 40 (found {signature!r})")
    if revision != FVH_REVISION:
        raise DamagedStore(f"firmware volume revision {revision}, not {FVH_REVISION}")
    if fv_length != len(data):
        raise DamagedStore(f"the firmware volume claims {fv_length} bytes, the file has"
                           f" {len(data)}")
    if (header_length % 2 or header_length < _FV_MIN_HEADER
            or header_length + _STORE_HEADER > len(data)):
        raise DamagedStore(f"firmware volume header length {header_length} is not sane")
    if sum(struct.unpack_from(f"<{header_length // 2}H", data, 0)) & 0xFFFF:
        raise DamagedStore("the firmware volume header checksum is wrong")
    if uuid.UUID(bytes_le=data[16:32]) != NV_DATA_FV_GUID:
        raise DamagedStore("the firmware volume is not a non-volatile data volume")
    _check_block_map(data, header_length, fv_length)
    _check_store_header(data, header_length, fv_length)


def _check_block_map(data: bytes, header_length: int, fv_length: int) -> None:
    covered = 0
    for offset in range(_FV_FIXED, header_length - 7, 8):
        blocks, length = struct.unpack_from("<II", data, offset)
        if blocks == 0 and length == 0:
            break
        covered += blocks * length
    else:
        raise DamagedStore("the firmware volume's block map has no end")
    if covered != fv_length:
        raise DamagedStore(f"the block map covers {covered} bytes, the volume {fv_length}")


def _check_store_header(data: bytes, start: int, fv_length: int) -> None:
    guid = uuid.UUID(bytes_le=data[start:start + 16])
    if guid not in (AUTHENTICATED_VARIABLE_GUID, VARIABLE_GUID):
        raise DamagedStore(f"no variable store header after the volume header (GUID {guid})")
    size, store_format, state = struct.unpack_from("<IBB", data, start + 16)
    if size < _STORE_HEADER or start + size > fv_length:
        raise DamagedStore(f"the variable store claims {size} bytes, beyond the volume")
    if store_format != VARIABLE_STORE_FORMATTED:
        raise DamagedStore(f"the variable store is not formatted (format {store_format:#x})")
    if state != VARIABLE_STORE_HEALTHY:
        raise DamagedStore(f"the variable store is not healthy (state {state:#x})")


def read_store(path: Path) -> bytes:
    """The bytes of a store file, refusing anything absurdly large."""
    with path.open("rb") as handle:
        return handle.read(MAX_STORE_BYTES + 1)


def check_before_boot(store: Path, good: Path, template: Path) -> None:
    """Refuse a damaged ``store`` (MachineError naming it; the last good copy stays at
    ``good``); a sound one becomes the new last good copy."""
    try:
        expected = template.stat().st_size
        data = read_store(store)
    except OSError as exc:
        raise MachineError(f"cannot read the variable store {store}:"
                           f" {exc.strerror or exc}") from None
    try:
        check_store(data, expected_size=expected)
    except DamagedStore as exc:
        kept = f"the last good copy is kept at {good}" if good.exists() \
            else "there is no good copy yet"
        raise MachineError(f"the variable store {store} is damaged ({exc}); refusing to"
                           f" boot; {kept}") from None
    write_atomically(good, data)


def write_atomically(path: Path, data: bytes, *, keep: Path | None = None) -> None:
    """Replace ``path`` by ``data`` (mode 0600) so that a crash leaves the old or the new
    file, never a mix; the old file stays at ``keep`` when given."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if keep is not None and path.exists():
            kept = keep.with_name(f".{keep.name}.{os.getpid()}.tmp")
            kept.unlink(missing_ok=True)
            os.link(path, kept)
            os.replace(kept, keep)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
