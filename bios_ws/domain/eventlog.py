"""The TCG PC Client event log: parse, replay and write it (standard library only).

Two formats are read, as Linux exposes them in ``binary_bios_measurements``:

- crypto agile (TPM 2.0): a SHA-1 format ``TCG_PCClientPCREvent`` carrying the
  ``TCG_EfiSpecIDEvent`` ("Spec ID Event03": algorithms and digest sizes, vendor
  info), then ``TCG_PCR_EVENT2`` records (pcrIndex, eventType, digest count,
  (algId, digest)*, eventSize, event);
- SHA-1 only (TPM 1.2 style): ``TCG_PCClientPCREvent`` records, no Spec ID event.

Input is hostile: every size is checked against what remains, digest sizes come
from the Spec ID event, and a malformed log raises ``EventLogError`` (a
``ValueError``) naming the byte offset. The writer produces the crypto-agile
format; ``parse_event_log(write_event_log(events, banks))`` gives the events back.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bios_ws.domain.eventlog_types import (
    ALGORITHM_IDS,
    EV_EFI_HCRTM_EVENT,
    EV_NO_ACTION,
    HASH_ALGORITHMS,
    HASHLIB_NAMES,
    bank_name,
    event_type_name,
)

__all__ = [
    "MAX_LOG_BYTES",
    "Event",
    "EventLogError",
    "SpecId",
    "parse_event_log",
    "parse_spec_id",
    "replay",
    "write_event_log",
]

MAX_LOG_BYTES = 16 * 1024 * 1024
MAX_EVENTS = 200_000
MAX_PCR = 31
MAX_DIGEST_SIZE = 128
MAX_ALGORITHMS = 32
SPEC_ID_SIGNATURE = b"Spec ID Event03\x00"
STARTUP_LOCALITY_SIGNATURE = b"StartupLocality\x00"
_SHA1_EVENT = struct.Struct("<II20sI")  # pcrIndex, eventType, digest, eventDataSize
_EVENT2_HEADER = struct.Struct("<III")  # pcrIndex, eventType, digestCount
_SPEC_ID_FIXED = struct.Struct("<16sIBBBBI")


class EventLogError(ValueError):
    """A malformed event log; the message names the byte offset."""


@dataclass(frozen=True)
class Event:
    """One measurement: ``digests`` maps a bank name ("sha256") to its digest."""

    index: int
    pcr: int
    type: int
    type_name: str
    digests: dict[str, bytes] = field(hash=False)
    data: bytes


@dataclass(frozen=True)
class SpecId:
    """The TCG_EfiSpecIDEvent of a crypto-agile log."""

    platform_class: int
    spec_version: tuple[int, int, int]
    uintn_size: int
    algorithms: tuple[tuple[int, int], ...]  # (TPM_ALG_ID, digest size)
    vendor_info: bytes

    @property
    def banks(self) -> tuple[str, ...]:
        return tuple(bank_name(alg) for alg, _ in self.algorithms)


class _Reader:
    """Bounded reads over the log; every shortfall is an EventLogError with the offset."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset

    def take(self, size: int, what: str) -> bytes:
        if size < 0 or size > self.remaining:
            raise EventLogError(
                f"truncated event log at offset {self.offset}: {what} needs {size} bytes,"
                f" {self.remaining} remain"
            )
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def unpack(self, layout: struct.Struct, what: str) -> tuple[Any, ...]:
        return layout.unpack(self.take(layout.size, what))

    def u16(self, what: str) -> int:
        value: int = struct.unpack("<H", self.take(2, what))[0]
        return value

    def u32(self, what: str) -> int:
        value: int = struct.unpack("<I", self.take(4, what))[0]
        return value


def parse_event_log(data: bytes) -> list[Event]:
    """Every event of a log, the Spec ID event (if any) first with index 0."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("an event log is bytes")
    data = bytes(data)
    if len(data) > MAX_LOG_BYTES:
        raise EventLogError(f"event log of {len(data)} bytes exceeds {MAX_LOG_BYTES}")
    if len(data) < _SHA1_EVENT.size:
        raise EventLogError(f"event log of {len(data)} bytes is too short for a first event")
    reader = _Reader(data)
    pcr, kind, digest, size = reader.unpack(_SHA1_EVENT, "first event header")
    if kind == EV_NO_ACTION and data[reader.offset:].startswith(SPEC_ID_SIGNATURE):
        # Like tpm2-tools, the records begin after vendorInfo, whatever eventDataSize says
        # (real logs exist where eventDataSize leaves vendorInfo out).
        if pcr != 0 or any(digest):
            raise EventLogError("Spec ID event at offset 0 must be on PCR 0 with a zero digest")
        if size < _SPEC_ID_FIXED.size:
            raise EventLogError(f"Spec ID event: eventDataSize {size} is too small")
        start = reader.offset
        spec = _read_spec_id(reader)
        first = Event(0, 0, kind, event_type_name(kind), {"sha1": digest},
                      data[start:reader.offset])
        return [first, *_read_agile_events(reader, spec)]
    reader.offset = 0
    first = _read_sha1_event(reader, 0)
    events = [first]
    while reader.remaining:
        _check_count(len(events), reader.offset)
        events.append(_read_sha1_event(reader, len(events)))
    return events


def parse_spec_id(data: bytes) -> SpecId:
    """Decode a TCG_EfiSpecIDEvent (the data of the first event of a crypto-agile log)."""
    reader = _Reader(data)
    spec = _read_spec_id(reader)
    if reader.remaining:
        raise EventLogError(f"Spec ID event: {reader.remaining} trailing bytes")
    return spec


def _read_spec_id(reader: _Reader) -> SpecId:
    signature, platform_class, minor, major, errata, uintn, count = reader.unpack(
        _SPEC_ID_FIXED, "Spec ID header")
    if signature != SPEC_ID_SIGNATURE:
        raise EventLogError("Spec ID event: signature is not 'Spec ID Event03'")
    if not 1 <= count <= MAX_ALGORITHMS:
        raise EventLogError(f"Spec ID event: {count} algorithms (expected 1..{MAX_ALGORITHMS})")
    algorithms: list[tuple[int, int]] = []
    for _ in range(count):
        at = reader.offset
        alg, size = reader.u16("Spec ID algorithm"), reader.u16("Spec ID digest size")
        known = HASH_ALGORITHMS.get(alg)
        if known and known[1] != size:
            raise EventLogError(f"Spec ID event offset {at}: {known[0]} declared with"
                                f" digest size {size}, expected {known[1]}")
        if not 1 <= size <= MAX_DIGEST_SIZE:
            raise EventLogError(f"Spec ID event offset {at}: digest size {size} out of range")
        if any(alg == seen for seen, _ in algorithms):
            raise EventLogError(f"Spec ID event offset {at}: algorithm 0x{alg:04x} repeated")
        algorithms.append((alg, size))
    vendor_size = reader.take(1, "Spec ID vendorInfoSize")[0]
    vendor = reader.take(vendor_size, "Spec ID vendorInfo")
    return SpecId(platform_class, (major, minor, errata), uintn, tuple(algorithms), vendor)


def _check_count(count: int, offset: int) -> None:
    if count >= MAX_EVENTS:
        raise EventLogError(f"event log has more than {MAX_EVENTS} events (offset {offset})")


def _check_pcr(pcr: int, offset: int) -> None:
    if pcr > MAX_PCR:
        raise EventLogError(f"event at offset {offset}: PCR index {pcr} out of range")


def _read_sha1_event(reader: _Reader, index: int) -> Event:
    start = reader.offset
    pcr, kind, digest, size = reader.unpack(_SHA1_EVENT, "SHA-1 event header")
    _check_pcr(pcr, start)
    payload = reader.take(size, f"event {index} data")
    return Event(index, pcr, kind, event_type_name(kind), {"sha1": digest}, payload)


def _read_agile_events(reader: _Reader, spec: SpecId) -> list[Event]:
    sizes = dict(spec.algorithms)
    events: list[Event] = []
    while reader.remaining:
        index = len(events) + 1
        _check_count(index, reader.offset)
        start = reader.offset
        pcr, kind, count = reader.unpack(_EVENT2_HEADER, f"event {index} header")
        _check_pcr(pcr, start)
        if count > len(sizes):
            raise EventLogError(f"event {index} at offset {start}: {count} digests, the Spec"
                                f" ID event declares {len(sizes)} algorithms")
        digests: dict[str, bytes] = {}
        for _ in range(count):
            at = reader.offset
            alg = reader.u16(f"event {index} algorithm id")
            if alg not in sizes:
                raise EventLogError(f"event {index} at offset {at}: algorithm 0x{alg:04x}"
                                    " is not declared in the Spec ID event")
            name = bank_name(alg)
            if name in digests:
                raise EventLogError(f"event {index} at offset {at}: {name} digest repeated")
            digests[name] = reader.take(sizes[alg], f"event {index} {name} digest")
        size = reader.u32(f"event {index} eventSize")
        payload = reader.take(size, f"event {index} data")
        events.append(Event(index, pcr, kind, event_type_name(kind), digests, payload))
    return events


def replay(events: Sequence[Event]) -> dict[str, dict[int, bytes]]:
    """PCR values implied by the events: bank -> PCR -> value.

    Every PCR that has an event with a digest in a bank appears in that bank.
    PCRs start at zero; a StartupLocality EV_NO_ACTION event on PCR 0 (or an
    H-CRTM event) before any extend of PCR 0 sets its start value to
    0...0<locality>. EV_NO_ACTION events are not extended. Banks hashlib cannot
    compute (sm3_256, unknown algorithms) are left out.
    """
    values: dict[str, dict[int, bytes]] = {}
    extended: set[tuple[str, int]] = set()
    locality: int | None = None
    for event in events:
        if event.type == EV_NO_ACTION:
            if event.pcr == 0 and event.data.startswith(STARTUP_LOCALITY_SIGNATURE):
                tail = event.data[len(STARTUP_LOCALITY_SIGNATURE):]
                locality = tail[0] if tail else None
        elif event.type == EV_EFI_HCRTM_EVENT and event.pcr == 0:
            locality = 4
        for bank, digest in event.digests.items():
            algorithm = HASHLIB_NAMES.get(bank)
            if algorithm is None or (event.index == 0 and _is_spec_id(event)):
                continue
            bank_values = values.setdefault(bank, {})
            size = hashlib.new(algorithm).digest_size
            if len(digest) != size:
                raise EventLogError(f"event {event.index}: {bank} digest of {len(digest)} bytes")
            if event.pcr not in bank_values:
                bank_values[event.pcr] = bytes(size)
            if event.pcr == 0 and locality and (bank, 0) not in extended:
                bank_values[0] = bytes(size - 1) + bytes([locality])
            if event.type != EV_NO_ACTION:
                previous = bank_values[event.pcr]
                bank_values[event.pcr] = hashlib.new(algorithm, previous + digest).digest()
                extended.add((bank, event.pcr))
    return values


def _is_spec_id(event: Event) -> bool:
    return event.type == EV_NO_ACTION and event.data.startswith(SPEC_ID_SIGNATURE)


def write_event_log(events: Sequence[Event], banks: Sequence[str]) -> bytes:
    """A crypto-agile log: the Spec ID event for ``banks``, then each event.

    Every event must carry exactly one digest per bank, of the bank's size; a
    Spec ID event among ``events`` is skipped (the header is written from ``banks``).
    """
    if not banks or len(set(banks)) != len(banks):
        raise ValueError("banks must be distinct and not empty")
    algorithms = [(_algorithm_id(bank), _digest_size(bank)) for bank in banks]
    spec = _SPEC_ID_FIXED.pack(SPEC_ID_SIGNATURE, 0, 0, 2, 0, 2, len(algorithms))
    spec += b"".join(struct.pack("<HH", alg, size) for alg, size in algorithms)
    spec += b"\x00"  # vendorInfoSize
    out = [_SHA1_EVENT.pack(0, EV_NO_ACTION, bytes(20), len(spec)), spec]
    for event in events:
        if _is_spec_id(event):
            continue
        if set(event.digests) != set(banks):
            raise ValueError(f"event {event.index} has digests for {sorted(event.digests)},"
                             f" expected {list(banks)}")
        if not 0 <= event.pcr <= MAX_PCR or not 0 <= event.type <= 0xFFFFFFFF:
            raise ValueError(f"event {event.index}: PCR or type out of range")
        out.append(_EVENT2_HEADER.pack(event.pcr, event.type, len(banks)))
        for (alg, size), bank in zip(algorithms, banks, strict=True):
            digest = event.digests[bank]
            if len(digest) != size:
                raise ValueError(f"event {event.index}: {bank} digest of {len(digest)} bytes")
            out.append(struct.pack("<H", alg) + digest)
        out.append(struct.pack("<I", len(event.data)) + event.data)
    return b"".join(out)


def _algorithm_id(bank: str) -> int:
    if bank in ALGORITHM_IDS:
        return ALGORITHM_IDS[bank]
    if bank.startswith("alg_0x"):
        return int(bank[len("alg_0x"):], 16)
    raise ValueError(f"unknown PCR bank {bank!r}")


def _digest_size(bank: str) -> int:
    alg = _algorithm_id(bank)
    if alg in HASH_ALGORITHMS:
        return HASH_ALGORITHMS[alg][1]
    raise ValueError(f"digest size of bank {bank!r} is unknown")
