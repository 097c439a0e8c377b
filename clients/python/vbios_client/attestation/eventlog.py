"""A minimal reader of the TCG PC Client event log, and its replay into PCR values.

The guest checks that the host's boot log explains the PCR values a quote
covers, without trusting the server's own parser. Only what replay needs is
kept per event: PCR index, event type, digests per bank (and the locality a
StartupLocality event announces). Two formats, as Linux exposes them in
``binary_bios_measurements``:

- crypto agile (TPM 2.0): a SHA-1 format first event carrying the
  TCG_EfiSpecIDEvent ("Spec ID Event03": algorithms and digest sizes), then
  TCG_PCR_EVENT2 records (pcrIndex, eventType, digest count, (algId, digest)*,
  eventSize, event);
- SHA-1 only (TPM 1.2 style): TCG_PCClientPCREvent records, no Spec ID event.

The log is hostile input: every size is checked against what remains, and a
defect raises ``EventLogError`` naming the byte offset. Replay follows the TCG
rules as the server does: PCRs start at zero, except PCR 0 after a
StartupLocality EV_NO_ACTION event (0...0<locality>) or an H-CRTM event
(0...04); EV_NO_ACTION events are never extended.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from vbios_client.attestation.tpm_formats import FormatError

__all__ = [
    "MAX_LOG_BYTES",
    "EventLogError",
    "LogEvent",
    "parse_event_log",
    "replay",
]

MAX_LOG_BYTES = 16 * 1024 * 1024
MAX_EVENTS = 200_000
MAX_PCR = 31
MAX_DIGEST_SIZE = 128
MAX_ALGORITHMS = 32
EV_NO_ACTION = 0x3
EV_EFI_HCRTM_EVENT = 0x80000010
HCRTM_LOCALITY = 4
SPEC_ID_SIGNATURE = b"Spec ID Event03\x00"
STARTUP_LOCALITY_SIGNATURE = b"StartupLocality\x00"
#: TPM_ALG_ID -> (bank name, digest size, hashlib name or None when not computable).
_ALGORITHMS: dict[int, tuple[str, int, str | None]] = {
    0x0004: ("sha1", 20, "sha1"),
    0x000B: ("sha256", 32, "sha256"),
    0x000C: ("sha384", 48, "sha384"),
    0x000D: ("sha512", 64, "sha512"),
    0x0012: ("sm3_256", 32, None),
    0x0027: ("sha3_256", 32, "sha3_256"),
    0x0028: ("sha3_384", 48, "sha3_384"),
    0x0029: ("sha3_512", 64, "sha3_512"),
}
_HASHLIB_BY_BANK = {bank: name for bank, _, name in _ALGORITHMS.values() if name}
_SHA1_EVENT = struct.Struct("<II20sI")  # pcrIndex, eventType, digest, eventDataSize
_EVENT2_HEADER = struct.Struct("<III")  # pcrIndex, eventType, digestCount
_SPEC_ID_FIXED = struct.Struct("<16sIBBBBI")  # signature ... numberOfAlgorithms


class EventLogError(FormatError):
    """A malformed event log; the message names the byte offset."""


@dataclass(frozen=True)
class LogEvent:
    """One measurement: ``digests`` maps a bank name ("sha256") to the digest extended.

    ``locality`` is set on a StartupLocality EV_NO_ACTION event only.
    """

    pcr: int
    type: int
    digests: dict[str, bytes] = field(hash=False)
    locality: int | None = None


class _Reader:
    """Little-endian bounded reads; a shortfall is an EventLogError with the offset."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.offset

    def take(self, size: int, what: str) -> bytes:
        if size > self.remaining:
            raise EventLogError(f"event log truncated at offset {self.offset}: {what} needs"
                                f" {size} bytes, {self.remaining} remain")
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def uint(self, size: int, what: str) -> int:
        return int.from_bytes(self.take(size, what), "little")


def _bank(alg: int) -> str:
    known = _ALGORITHMS.get(alg)
    return known[0] if known else f"alg_0x{alg:04x}"


def parse_event_log(data: bytes) -> list[LogEvent]:
    """The measurement events of a log, in order (the Spec ID header is not one of them)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise EventLogError(f"an event log is bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > MAX_LOG_BYTES:
        raise EventLogError(f"event log of {len(data)} bytes exceeds {MAX_LOG_BYTES}")
    reader = _Reader(data)
    pcr, kind, digest, size = _SHA1_EVENT.unpack(reader.take(_SHA1_EVENT.size, "first event"))
    if kind == EV_NO_ACTION and data[reader.offset:].startswith(SPEC_ID_SIGNATURE):
        if pcr != 0 or any(digest):
            raise EventLogError("Spec ID event at offset 0 must be on PCR 0 with a zero digest")
        if size < _SPEC_ID_FIXED.size:
            raise EventLogError(f"Spec ID event at offset 0: eventDataSize {size} is too small")
        # Records begin after vendorInfo whatever eventDataSize says, as tpm2-tools reads
        # them (real logs exist whose eventDataSize leaves vendorInfo out).
        sizes = _spec_id_algorithms(reader)
        return _agile_events(reader, sizes)
    reader.offset = 0
    events: list[LogEvent] = []
    while reader.remaining:
        _check_count(len(events), reader.offset)
        events.append(_sha1_event(reader, len(events)))
    return events


def _spec_id_algorithms(reader: _Reader) -> dict[int, int]:
    """TPM_ALG_ID -> digest size, from the TCG_EfiSpecIDEvent."""
    header = _SPEC_ID_FIXED.unpack(reader.take(_SPEC_ID_FIXED.size, "Spec ID header"))
    count = header[-1]
    if not 1 <= count <= MAX_ALGORITHMS:
        raise EventLogError(f"Spec ID event: {count} algorithms (expected 1..{MAX_ALGORITHMS})")
    sizes: dict[int, int] = {}
    for _ in range(count):
        at = reader.offset
        alg, size = reader.uint(2, "Spec ID algorithm"), reader.uint(2, "Spec ID digest size")
        known = _ALGORITHMS.get(alg)
        if known and known[1] != size:
            raise EventLogError(f"Spec ID event offset {at}: {known[0]} declared with digest"
                                f" size {size}, expected {known[1]}")
        if not 1 <= size <= MAX_DIGEST_SIZE:
            raise EventLogError(f"Spec ID event offset {at}: digest size {size} out of range")
        if alg in sizes:
            raise EventLogError(f"Spec ID event offset {at}: algorithm 0x{alg:04x} repeated")
        sizes[alg] = size
    vendor_size = reader.uint(1, "Spec ID vendorInfoSize")
    reader.take(vendor_size, "Spec ID vendorInfo")
    return sizes


def _check_count(count: int, offset: int) -> None:
    if count >= MAX_EVENTS:
        raise EventLogError(f"event log has more than {MAX_EVENTS} events (offset {offset})")


def _check_pcr(pcr: int, offset: int) -> None:
    if pcr > MAX_PCR:
        raise EventLogError(f"event at offset {offset}: PCR index {pcr} out of range")


def _sha1_event(reader: _Reader, index: int) -> LogEvent:
    start = reader.offset
    pcr, kind, digest, size = _SHA1_EVENT.unpack(
        reader.take(_SHA1_EVENT.size, f"event {index} header"))
    _check_pcr(pcr, start)
    payload = reader.take(size, f"event {index} data")
    return LogEvent(pcr, kind, {"sha1": digest}, _locality(kind, payload, start))


def _agile_events(reader: _Reader, sizes: dict[int, int]) -> list[LogEvent]:
    events: list[LogEvent] = []
    while reader.remaining:
        index = len(events) + 1  # the Spec ID event is event 0
        _check_count(index, reader.offset)
        start = reader.offset
        pcr, kind, count = _EVENT2_HEADER.unpack(
            reader.take(_EVENT2_HEADER.size, f"event {index} header"))
        _check_pcr(pcr, start)
        if count > len(sizes):
            raise EventLogError(f"event {index} at offset {start}: {count} digests, the Spec"
                                f" ID event declares {len(sizes)} algorithms")
        digests: dict[str, bytes] = {}
        for _ in range(count):
            at = reader.offset
            alg = reader.uint(2, f"event {index} algorithm id")
            if alg not in sizes:
                raise EventLogError(f"event {index} at offset {at}: algorithm 0x{alg:04x}"
                                    " is not declared in the Spec ID event")
            bank = _bank(alg)
            if bank in digests:
                raise EventLogError(f"event {index} at offset {at}: {bank} digest repeated")
            digests[bank] = reader.take(sizes[alg], f"event {index} {bank} digest")
        size = reader.uint(4, f"event {index} eventSize")
        payload = reader.take(size, f"event {index} data")
        events.append(LogEvent(pcr, kind, digests, _locality(kind, payload, start)))
    return events


def _locality(kind: int, payload: bytes, offset: int) -> int | None:
    if kind != EV_NO_ACTION or not payload.startswith(STARTUP_LOCALITY_SIGNATURE):
        return None
    if len(payload) <= len(STARTUP_LOCALITY_SIGNATURE):
        raise EventLogError(f"StartupLocality event at offset {offset} has no locality byte")
    return payload[len(STARTUP_LOCALITY_SIGNATURE)]


def replay(events: Sequence[LogEvent]) -> dict[str, dict[int, bytes]]:
    """PCR values the events imply: bank -> PCR -> value (PCR_new = H(PCR_old || digest)).

    Every PCR with an event carrying a digest in a bank appears in that bank.
    PCR 0 starts at 0...0<locality> when a StartupLocality EV_NO_ACTION event on
    PCR 0 (or an H-CRTM event, locality 4) comes before its first extend in the
    bank. Banks hashlib cannot compute (sm3_256, unknown algorithms) are left out.
    """
    values: dict[str, dict[int, bytes]] = {}
    extended: set[tuple[str, int]] = set()
    locality: int | None = None
    for event in events:
        if event.type == EV_NO_ACTION:
            if event.pcr == 0 and event.locality is not None:
                locality = event.locality
        elif event.type == EV_EFI_HCRTM_EVENT and event.pcr == 0:
            locality = HCRTM_LOCALITY
        for bank, digest in event.digests.items():
            algorithm = _HASHLIB_BY_BANK.get(bank)
            if algorithm is None:
                continue
            size = hashlib.new(algorithm).digest_size
            if len(digest) != size:
                raise EventLogError(f"{bank} digest of {len(digest)} bytes on PCR {event.pcr}")
            bank_values = values.setdefault(bank, {})
            bank_values.setdefault(event.pcr, bytes(size))
            if event.pcr == 0 and locality and (bank, 0) not in extended:
                bank_values[0] = bytes(size - 1) + bytes([locality])
            if event.type != EV_NO_ACTION:
                previous = bank_values[event.pcr]
                bank_values[event.pcr] = hashlib.new(algorithm, previous + digest).digest()
                extended.add((bank, event.pcr))
    return values
