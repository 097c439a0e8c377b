"""The TCG event log parser, replay and writer, on real logs and hand-made hostile ones."""

from __future__ import annotations

import contextlib
import hashlib
import struct
from pathlib import Path

import pytest

from bios_ws.domain.eventlog import (
    MAX_LOG_BYTES,
    SPEC_ID_SIGNATURE,
    STARTUP_LOCALITY_SIGNATURE,
    Event,
    EventLogError,
    parse_event_log,
    parse_spec_id,
    replay,
    write_event_log,
)
from bios_ws.domain.eventlog_types import EV_NO_ACTION, EV_SEPARATOR, event_type_name

VECTORS = Path("/work/shared/vectors/eventlogs")
VECTOR_FILES = sorted(VECTORS.glob("*.bin"))
SHA1_ID, SHA256_ID = 0x0004, 0x000B


def spec_id_data(algorithms: list[tuple[int, int]], vendor: bytes = b"") -> bytes:
    body = struct.pack("<16sIBBBBI", SPEC_ID_SIGNATURE, 0, 0, 2, 0, 2, len(algorithms))
    body += b"".join(struct.pack("<HH", alg, size) for alg, size in algorithms)
    return body + bytes([len(vendor)]) + vendor


def header_event(data: bytes, *, pcr: int = 0, digest: bytes = bytes(20)) -> bytes:
    return struct.pack("<II20sI", pcr, EV_NO_ACTION, digest, len(data)) + data


def agile_event(pcr: int, kind: int, digests: list[tuple[int, bytes]], data: bytes) -> bytes:
    out = struct.pack("<III", pcr, kind, len(digests))
    out += b"".join(struct.pack("<H", alg) + d for alg, d in digests)
    return out + struct.pack("<I", len(data)) + data


TWO_BANKS = [(SHA1_ID, 20), (SHA256_ID, 32)]


def small_log(*events: bytes) -> bytes:
    return header_event(spec_id_data(TWO_BANKS)) + b"".join(events)


def separator(pcr: int) -> bytes:
    data = bytes(4)
    return agile_event(pcr, EV_SEPARATOR, [(SHA1_ID, hashlib.sha1(data).digest()),
                                           (SHA256_ID, hashlib.sha256(data).digest())], data)


# -- real logs --------------------------------------------------------------------


def test_vectors_are_there() -> None:
    assert len(VECTOR_FILES) >= 12


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.name)
def test_every_real_log_parses_and_replays(path: Path) -> None:
    events = parse_event_log(path.read_bytes())
    assert events and [e.index for e in events] == list(range(len(events)))
    for event in events:
        assert 0 <= event.pcr <= 31
        assert event.type_name == event_type_name(event.type)
        for digest in event.digests.values():
            assert digest
    values = replay(events)
    for bank, pcrs in values.items():
        size = hashlib.new(bank).digest_size
        assert all(len(value) == size for value in pcrs.values())


def test_crypto_agile_log_starts_with_its_spec_id_event() -> None:
    events = parse_event_log((VECTORS / "event-arch-linux.bin").read_bytes())
    spec = parse_spec_id(events[0].data)
    assert events[0].type_name == "EV_NO_ACTION"
    assert spec.banks[:2] == ("sha1", "sha256")
    assert all(set(e.digests) <= set(spec.banks) for e in events[1:])


def test_sha1_only_log_has_sha1_digests_only() -> None:
    events = parse_event_log((VECTORS / "event-uefi-sha1-log.bin").read_bytes())
    assert {bank for e in events for bank in e.digests} == {"sha1"}
    assert set(replay(events)) == {"sha1"}


def test_replay_is_the_chain_of_extends() -> None:
    events = parse_event_log((VECTORS / "event-postcode.bin").read_bytes())
    expected: dict[int, bytes] = {}
    for event in events[1:]:
        if event.type != EV_NO_ACTION:
            old = expected.get(event.pcr, bytes(32))
            expected[event.pcr] = hashlib.sha256(old + event.digests["sha256"]).digest()
    assert replay(events)["sha256"] == expected


def test_startup_locality_sets_the_start_of_pcr0() -> None:
    locality_data = STARTUP_LOCALITY_SIGNATURE + b"\x03"
    digest1, digest256 = hashlib.sha1(b"x").digest(), hashlib.sha256(b"x").digest()
    log = small_log(
        agile_event(0, EV_NO_ACTION, [(SHA1_ID, bytes(20)), (SHA256_ID, bytes(32))],
                    locality_data),
        agile_event(0, 0x80000008, [(SHA1_ID, digest1), (SHA256_ID, digest256)], bytes(16)),
    )
    values = replay(parse_event_log(log))
    start = bytes(31) + b"\x03"
    assert values["sha256"][0] == hashlib.sha256(start + digest256).digest()
    assert values["sha1"][0] == hashlib.sha1(bytes(19) + b"\x03" + digest1).digest()


# -- writer -------------------------------------------------------------------------


def test_writer_round_trip() -> None:
    events = [
        Event(i, pcr, EV_SEPARATOR, "EV_SEPARATOR",
              {"sha1": hashlib.sha1(bytes([i])).digest(),
               "sha256": hashlib.sha256(bytes([i])).digest()}, bytes([i]) * i)
        for i, pcr in enumerate([0, 7, 4, 4], 1)
    ]
    parsed = parse_event_log(write_event_log(events, ["sha1", "sha256"]))
    assert parse_spec_id(parsed[0].data).banks == ("sha1", "sha256")
    assert parsed[1:] == events
    assert replay(parsed) == replay(events)


def test_writer_round_trips_a_real_log() -> None:
    events = parse_event_log((VECTORS / "event-bootorder.bin").read_bytes())
    banks = parse_spec_id(events[0].data).banks
    again = parse_event_log(write_event_log(events, banks))
    assert again[1:] == events[1:]


@pytest.mark.parametrize("digests", [
    {"sha256": bytes(32)},                                   # a bank missing
    {"sha1": bytes(20), "sha256": bytes(31)},                # wrong size
    {"sha1": bytes(20), "sha256": bytes(32), "sha384": bytes(48)},  # a bank too many
])
def test_writer_refuses_digests_that_do_not_match_the_banks(digests: dict[str, bytes]) -> None:
    event = Event(1, 0, EV_SEPARATOR, "EV_SEPARATOR", digests, b"")
    with pytest.raises(ValueError):
        write_event_log([event], ["sha1", "sha256"])


def test_writer_refuses_unknown_banks() -> None:
    with pytest.raises(ValueError):
        write_event_log([], ["md5"])
    with pytest.raises(ValueError):
        write_event_log([], [])


# -- hostile input --------------------------------------------------------------------


def test_every_truncation_is_refused_or_a_prefix() -> None:
    data = (VECTORS / "event.bin").read_bytes()
    full = parse_event_log(data)
    for cut in range(len(data)):
        try:
            events = parse_event_log(data[:cut])
        except EventLogError as exc:
            assert "offset" in str(exc) or "short" in str(exc) or "Spec ID" in str(exc)
        else:
            assert events == full[:len(events)]


def test_huge_event_size_is_refused_with_its_offset() -> None:
    log = small_log(separator(0)) + struct.pack("<III", 0, EV_SEPARATOR, 0)
    log += struct.pack("<I", 0xFFFFFFF0)
    with pytest.raises(EventLogError, match="offset"):
        parse_event_log(log)


def test_huge_sha1_event_size_is_refused() -> None:
    log = struct.pack("<II20sI", 0, EV_SEPARATOR, bytes(20), 0x7FFFFFFF) + b"abc"
    with pytest.raises(EventLogError, match="truncated"):
        parse_event_log(log)


@pytest.mark.parametrize("algorithms,message", [
    ([], "algorithms"),
    ([(SHA256_ID, 20)], "sha256"),
    ([(SHA1_ID, 20), (SHA1_ID, 20)], "repeated"),
    ([(0x1234, 0)], "digest size"),
    ([(0x1234, 4096)], "digest size"),
    ([(SHA1_ID, 20)] * 33, "algorithms"),
])
def test_bad_spec_id_is_refused(algorithms: list[tuple[int, int]], message: str) -> None:
    with pytest.raises(EventLogError, match=message):
        parse_event_log(header_event(spec_id_data(algorithms)))


def test_spec_id_with_vendor_info_beyond_the_end_is_refused() -> None:
    data = spec_id_data(TWO_BANKS)[:-1] + b"\xff"  # vendorInfoSize 255, nothing follows
    with pytest.raises(EventLogError, match="vendorInfo"):
        parse_event_log(header_event(data))


def test_spec_id_event_must_be_on_pcr0_with_zero_digest() -> None:
    with pytest.raises(EventLogError, match="PCR 0"):
        parse_event_log(header_event(spec_id_data(TWO_BANKS), digest=b"\x01" * 20))
    with pytest.raises(EventLogError, match="PCR 0"):
        parse_event_log(header_event(spec_id_data(TWO_BANKS), pcr=1))


def test_undeclared_algorithm_and_extra_digests_are_refused() -> None:
    sha384 = agile_event(0, EV_SEPARATOR, [(0x000C, bytes(48))], b"")
    with pytest.raises(EventLogError, match="not declared"):
        parse_event_log(small_log(sha384))
    three = agile_event(0, EV_SEPARATOR, [(SHA1_ID, bytes(20))] * 3, b"")
    with pytest.raises(EventLogError, match="digests"):
        parse_event_log(small_log(three))
    twice = agile_event(0, EV_SEPARATOR, [(SHA1_ID, bytes(20))] * 2, b"")
    with pytest.raises(EventLogError, match="repeated"):
        parse_event_log(small_log(twice))


def test_pcr_index_out_of_range_is_refused() -> None:
    with pytest.raises(EventLogError, match="PCR index"):
        parse_event_log(small_log(separator(32)))
    with pytest.raises(EventLogError, match="PCR index"):
        parse_event_log(struct.pack("<II20sI", 0xFFFFFFFF, 4, bytes(20), 0))


def test_too_large_and_too_short_logs_are_refused() -> None:
    with pytest.raises(EventLogError, match="exceeds"):
        parse_event_log(bytes(MAX_LOG_BYTES + 1))
    with pytest.raises(EventLogError, match="too short"):
        parse_event_log(b"\x00" * 10)
    with pytest.raises(TypeError):
        parse_event_log("not bytes")  # type: ignore[arg-type]


def test_garbage_is_refused_cleanly() -> None:
    import random

    generator = random.Random(1234)  # deterministic fuzz: only EventLogError may escape
    base = (VECTORS / "event-uefivar.bin").read_bytes()
    for _ in range(300):
        mutated = bytearray(base)
        for _ in range(generator.randint(1, 8)):
            mutated[generator.randrange(len(mutated))] = generator.randrange(256)
        with contextlib.suppress(EventLogError):
            parse_event_log(bytes(mutated))
