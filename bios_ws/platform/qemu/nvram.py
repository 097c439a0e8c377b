"""The variables of an OVMF variable store file (``vars.fd``): read them, write them back.

The store's volume and store headers are ``varstore``'s (checked the same way here);
the variables follow the store header, each 4-byte aligned, until the first position
without a variable start mark (edk2 ``MdeModulePkg/Include/Guid/VariableFormat.h``)::

    AUTHENTICATED_VARIABLE_HEADER (60 bytes)    VARIABLE_HEADER (32 bytes, plain store)
    0  StartId u16 (0x55aa)                     0  StartId u16, State u8, Reserved u8
    2  State u8, Reserved u8                    4  Attributes u32
    4  Attributes u32                           8  NameSize u32, DataSize u32
    8  MonotonicCount u64                       16 VendorGuid
    16 TimeStamp EFI_TIME (16 bytes)
    32 PubKeyIndex u32
    36 NameSize u32, DataSize u32
    44 VendorGuid
    then the name (UCS-2, NUL-terminated), the data, 0xff up to the next 4-byte boundary

A variable's state bits only ever go from 1 to 0: 0x3f is a valid variable (VAR_ADDED);
0x3e (added, deletion in transition) is still the value when no 0x3f copy of the same
variable exists (edk2 ``FindVariableEx`` does the same); anything else (0x7f header only,
0x3d/0x3c deleted) is garbage the firmware reclaims. A size field of all ones is an
unwritten field, read as 0 (edk2 ``NameSizeOfVariable``); any other length that runs
past the end of the store, a name that is not NUL-terminated UCS-2, or a variable valid
twice refuses the whole store (``DamagedStore``; ``load`` turns it into MachineError
naming the file). Bytes other than 0xff after the last variable are what a write cut
short leaves (QEMU killed while the guest wrote): the firmware reclaims them, and so
does the next rewrite here; they are not a reason to refuse the store.

Writing rebuilds the variable area: only the valid variables, in the order given, as
state 0x3f, then 0xff to the end of the store; the bytes after the store (the fault
tolerant write area) are kept as they are. When the variables are exactly those read,
the original bytes are returned unchanged. ``save`` replaces the file atomically
(temporary file, fsync, rename, directory fsync) and keeps the previous file as
``vars.prev.fd`` beside it (a hard link, no copy). Standard library only.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bios_ws.errors import MachineError
from bios_ws.platform.qemu.varstore import (
    AUTHENTICATED_VARIABLE_GUID,
    DamagedStore,
    check_store,
    read_store,
    write_atomically,
)

VARIABLE_START = 0x55AA
VAR_ADDED = 0x3F
VAR_IN_DELETED_TRANSITION = 0xFE
#: State of an added variable whose deletion was under way (still its value if alone).
_ADDED_IN_TRANSITION = VAR_ADDED & VAR_IN_DELETED_TRANSITION

EFI_VARIABLE_NON_VOLATILE = 0x01
EFI_VARIABLE_BOOTSERVICE_ACCESS = 0x02
EFI_VARIABLE_RUNTIME_ACCESS = 0x04
EFI_VARIABLE_TIME_BASED_AUTHENTICATED_WRITE_ACCESS = 0x20
NV_BS = EFI_VARIABLE_NON_VOLATILE | EFI_VARIABLE_BOOTSERVICE_ACCESS
NV_BS_RT = NV_BS | EFI_VARIABLE_RUNTIME_ACCESS
NV_BS_RT_AT = NV_BS_RT | EFI_VARIABLE_TIME_BASED_AUTHENTICATED_WRITE_ACCESS

_AUTH_HEADER = struct.Struct("<HBBIQ16sIII16s")
_PLAIN_HEADER = struct.Struct("<HBBIII16s")
_STORE_HEADER = 28
_EFI_TIME = struct.Struct("<HBBBBBxIhBx")
NO_TIME = bytes(16)
_ALL_ONES = 0xFFFFFFFF
#: A variable name longer than this is not one the firmware writes (edk2 limits a whole
#: variable to PcdMaxVariableSize, 33 KiB in OVMF; names are far shorter).
MAX_NAME_BYTES = 1024


@dataclass(frozen=True)
class Variable:
    """One UEFI variable as the store holds it. ``timestamp`` is the raw EFI_TIME, and
    ``monotonic_count`` and ``pubkey_index`` the authenticated header's fields (all zero
    in a plain store, and for variables that are not time-based authenticated)."""

    name: str
    guid: uuid.UUID
    attributes: int
    data: bytes
    timestamp: bytes = NO_TIME
    monotonic_count: int = 0
    pubkey_index: int = 0

    @property
    def key(self) -> tuple[str, uuid.UUID]:
        return self.name, self.guid


@dataclass(frozen=True)
class VariableStore:
    """A store file's bytes and the valid variables read from them."""

    data: bytes
    #: Offsets of the variable area (just after the store header) and of its end.
    start: int
    end: int
    authenticated: bool
    variables: tuple[Variable, ...]

    def find(self, name: str, guid: uuid.UUID) -> Variable | None:
        return find(self.variables, name, guid)

    def image(self, variables: Sequence[Variable]) -> bytes:
        """The store's bytes holding exactly ``variables`` (the original bytes if they are
        the ones read). ValueError if they do not fit or do not suit the store."""
        variables = tuple(variables)
        if variables == self.variables:
            return self.data
        keys = [v.key for v in variables]
        if len(set(keys)) != len(keys):
            raise ValueError("a variable appears twice")
        area = b"".join(_encode(v, authenticated=self.authenticated) for v in variables)
        room = self.end - self.start
        if len(area) > room:
            raise ValueError(f"the variables take {len(area)} bytes, the store has {room}")
        return b"".join((self.data[:self.start], area, b"\xff" * (room - len(area)),
                         self.data[self.end:]))


def find(variables: Iterable[Variable], name: str, guid: uuid.UUID) -> Variable | None:
    return next((v for v in variables if v.name == name and v.guid == guid), None)


def parse(data: bytes) -> VariableStore:
    """The variables of a store's bytes; DamagedStore saying why it is not sound."""
    check_store(data, expected_size=len(data))
    header_length = struct.unpack_from("<H", data, 48)[0]
    authenticated = uuid.UUID(bytes_le=data[header_length:header_length + 16]) == \
        AUTHENTICATED_VARIABLE_GUID
    size = struct.unpack_from("<I", data, header_length + 16)[0]
    start = _align(header_length + _STORE_HEADER)
    end = header_length + size
    if start > end:
        raise DamagedStore(f"the variable store size {size} leaves no room for variables")
    found: dict[tuple[str, uuid.UUID], Variable] = {}
    pending: dict[tuple[str, uuid.UUID], Variable] = {}
    position = start
    header = _AUTH_HEADER if authenticated else _PLAIN_HEADER
    while position + header.size <= end and \
            struct.unpack_from("<H", data, position)[0] == VARIABLE_START:
        variable, state, position = _read_one(data, position, end, authenticated)
        if state == VAR_ADDED:
            if variable.key in found:
                raise DamagedStore(f"the variable {variable.name} ({variable.guid}) is valid"
                                   " twice")
            found[variable.key] = variable
            pending.pop(variable.key, None)
        elif state == _ADDED_IN_TRANSITION and variable.key not in found:
            pending[variable.key] = variable
    found.update(pending)
    return VariableStore(data, start, end, authenticated, tuple(found.values()))


def _read_one(data: bytes, position: int, end: int,
              authenticated: bool) -> tuple[Variable, int, int]:
    """The variable at ``position``, its state, and where the next one starts."""
    timestamp, count, pubkey = NO_TIME, 0, 0
    if authenticated:
        (_, state, _, attributes, count, timestamp, pubkey, name_size, data_size,
         guid) = _AUTH_HEADER.unpack_from(data, position)
        header_size = _AUTH_HEADER.size
    else:
        _, state, _, attributes, name_size, data_size, guid = \
            _PLAIN_HEADER.unpack_from(data, position)
        header_size = _PLAIN_HEADER.size
    if state == 0xFF or _ALL_ONES in (name_size, data_size, attributes):
        name_size = data_size = 0  # a header whose writing was cut short
    name_at = position + header_size
    data_at = name_at + name_size
    following = data_at + data_size
    if following > end:
        raise DamagedStore(f"the variable at offset {position:#x} claims {name_size} + "
                           f"{data_size} bytes, {end - name_at} remain")
    variable = Variable("", uuid.UUID(bytes_le=guid), attributes, data[data_at:following],
                        bytes(timestamp), count, pubkey)
    if state in (VAR_ADDED, _ADDED_IN_TRANSITION):
        variable = _named(variable, data[name_at:data_at], position)
    return variable, state, _align(following)


def _named(variable: Variable, raw: bytes, position: int) -> Variable:
    if len(raw) < 4 or len(raw) % 2 or len(raw) > MAX_NAME_BYTES or raw[-2:] != b"\0\0":
        raise DamagedStore(f"the variable at offset {position:#x} has a malformed name")
    try:
        name = raw[:-2].decode("utf-16-le")
    except UnicodeDecodeError:
        raise DamagedStore(f"the variable at offset {position:#x} has a name that is not"
                           " UCS-2") from None
    if "\0" in name:
        raise DamagedStore(f"the variable at offset {position:#x} has a NUL in its name")
    return Variable(name, variable.guid, variable.attributes, variable.data,
                    variable.timestamp, variable.monotonic_count, variable.pubkey_index)


def _encode(variable: Variable, *, authenticated: bool) -> bytes:
    name = ucs2(variable.name)
    if not variable.name or "\0" in variable.name or len(name) > MAX_NAME_BYTES:
        raise ValueError(f"invalid variable name {variable.name!r}")
    if not 0 <= variable.attributes < _ALL_ONES:
        raise ValueError(f"invalid attributes {variable.attributes:#x} of {variable.name}")
    guid = variable.guid.bytes_le
    if authenticated:
        if len(variable.timestamp) != 16:
            raise ValueError(f"the timestamp of {variable.name} is not an EFI_TIME")
        header = _AUTH_HEADER.pack(VARIABLE_START, VAR_ADDED, 0, variable.attributes,
                                   variable.monotonic_count, variable.timestamp,
                                   variable.pubkey_index, len(name), len(variable.data), guid)
    else:
        if variable.attributes & EFI_VARIABLE_TIME_BASED_AUTHENTICATED_WRITE_ACCESS:
            raise ValueError(f"{variable.name} is authenticated; this store is not")
        header = _PLAIN_HEADER.pack(VARIABLE_START, VAR_ADDED, 0, variable.attributes,
                                    len(name), len(variable.data), guid)
    size = len(header) + len(name) + len(variable.data)
    return b"".join((header, name, variable.data, b"\xff" * (_align(size) - size)))


def ucs2(text: str) -> bytes:
    """``text`` as NUL-terminated UCS-2 (ValueError beyond the basic plane)."""
    if any(ord(c) > 0xFFFF or 0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise ValueError(f"{text!r} is not UCS-2")
    return text.encode("utf-16-le") + b"\0\0"


def _align(offset: int) -> int:
    return (offset + 3) & ~3


# -- EFI_TIME ------------------------------------------------------------------------------


def efi_time(moment: datetime) -> bytes:
    """An EFI_TIME in UTC (time zone 0, no daylight flags), to the second (as edk2's
    authenticated variable services compare it)."""
    moment = moment.astimezone(UTC)
    return _EFI_TIME.pack(moment.year, moment.month, moment.day, moment.hour,
                          moment.minute, moment.second, 0, 0, 0)


def time_of(raw: bytes) -> datetime | None:
    """The moment of an EFI_TIME (None when all zero or not a date)."""
    if len(raw) != 16 or raw == NO_TIME:
        return None
    year, month, day, hour, minute, second, _, _, _ = _EFI_TIME.unpack(raw)
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None


# -- files ---------------------------------------------------------------------------------


def load(path: Path, *, expected_size: int | None = None) -> VariableStore:
    """The store in ``path``; MachineError naming the file if it is unreadable or damaged
    (or not ``expected_size`` bytes long, when given)."""
    try:
        data = read_store(path)
    except OSError as exc:
        raise MachineError(f"cannot read the variable store {path}:"
                           f" {exc.strerror or exc}") from None
    try:
        if expected_size is not None and len(data) != expected_size:
            raise DamagedStore(f"it is {len(data)} bytes long, its template {expected_size}")
        return parse(data)
    except DamagedStore as exc:
        raise MachineError(f"the variable store {path} is damaged ({exc})") from None


def previous_copy(path: Path) -> Path:
    """Where ``save`` keeps the file it replaced: ``vars.fd`` -> ``vars.prev.fd``."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def save(path: Path, store: VariableStore, variables: Sequence[Variable]) -> bool:
    """Write ``variables`` into the store file ``path`` (read as ``store``); False, and
    nothing written, when they are already what it holds. MachineError if they do not
    fit; the file is then unchanged."""
    try:
        data = store.image(variables)
    except ValueError as exc:
        raise MachineError(f"cannot write the variable store {path}: {exc}") from None
    if data == store.data:
        return False
    write_atomically(path, data, keep=previous_copy(path))
    return True
