"""The guest's own event log parser and replay, against the server's writer and replay."""

from __future__ import annotations

import hashlib
import re
import struct

import pytest
from vbios_client.attestation import EventLogError, LogEvent, parse_event_log, replay
from vbios_client.attestation.eventlog import MAX_LOG_BYTES

from bios_ws.domain.eventlog import parse_event_log as server_parse
from bios_ws.domain.eventlog import replay as server_replay
from bios_ws.domain.eventlog import write_event_log
from bios_ws.domain.eventlog_types import (
    EV_EFI_HCRTM_EVENT,
    EV_NO_ACTION,
    EV_POST_CODE,
    EV_SEPARATOR,
)
from tests.unit.test_client_attestation_support import boot_events, event

SPEC_ID = b"Spec ID Event03\x00"
SHA1, SHA256 = 0x0004, 0x000B


def spec_header(algorithms: list[tuple[int, int]], *, pcr: int = 0, digest: bytes = bytes(20),
                vendor: bytes = b"", size: int | None = None) -> bytes:
    body = struct.pack("<16sIBBBBI", SPEC_ID, 0, 0, 2, 0, 2, len(algorithms))
    body += b"".join(struct.pack("<HH", alg, length) for alg, length in algorithms)
    body += bytes([len(vendor)]) + vendor
    return struct.pack("<II20sI", pcr, EV_NO_ACTION, digest,
                       len(body) if size is None else size) + body


def agile(pcr: int, kind: int, digests: list[tuple[int, bytes]], data: bytes = b"") -> bytes:
    out = struct.pack("<III", pcr, kind, len(digests))
    out += b"".join(struct.pack("<H", alg) + digest for alg, digest in digests)
    return out + struct.pack("<I", len(data)) + data


def sha1_event(pcr: int, kind: int, data: bytes) -> bytes:
    return struct.pack("<II20sI", pcr, kind, hashlib.sha1(data).digest(), len(data)) + data


BOOT_LOG = write_event_log(boot_events(), ["sha1", "sha256"])


def test_events_match_the_server_parser() -> None:
    ours = parse_event_log(BOOT_LOG)
    theirs = server_parse(BOOT_LOG)[1:]  # the server keeps the Spec ID event as event 0
    assert [(e.pcr, e.type, e.digests) for e in ours] == [
        (e.pcr, e.type, e.digests) for e in theirs]
    assert ours[0].locality == 3 and all(e.locality is None for e in ours[1:])


def test_replay_matches_the_server_and_honours_startup_locality() -> None:
    values = replay(parse_event_log(BOOT_LOG))
    assert values == server_replay(server_parse(BOOT_LOG))
    expected = bytes(31) + b"\x03"
    for logged in boot_events()[1:]:
        if logged.pcr == 0:
            expected = hashlib.sha256(expected + logged.digests["sha256"]).digest()
    assert values["sha256"][0] == expected
    assert 5 not in values["sha256"]


def test_no_action_events_are_not_extended() -> None:
    log = write_event_log([event(4, EV_NO_ACTION, b"anything", ["sha256"])], ["sha256"])
    assert replay(parse_event_log(log)) == {"sha256": {4: bytes(32)}}


def test_hcrtm_event_starts_pcr0_at_locality_4() -> None:
    log = write_event_log([event(0, EV_EFI_HCRTM_EVENT, b"HCRTM", ["sha256"])], ["sha256"])
    digest = hashlib.sha256(b"HCRTM").digest()
    assert replay(parse_event_log(log))["sha256"][0] == hashlib.sha256(
        bytes(31) + b"\x04" + digest).digest()


def test_locality_after_the_first_extend_changes_nothing() -> None:
    events = [event(0, EV_POST_CODE, b"a", ["sha256"]),
              event(0, EV_NO_ACTION, b"StartupLocality\x00\x03", ["sha256"], zero=True)]
    log = write_event_log(events, ["sha256"])
    assert replay(parse_event_log(log))["sha256"][0] == hashlib.sha256(
        bytes(32) + hashlib.sha256(b"a").digest()).digest()


def test_sha1_only_log() -> None:
    log = sha1_event(0, EV_POST_CODE, b"one") + sha1_event(7, EV_SEPARATOR, bytes(4))
    events = parse_event_log(log)
    assert [(e.pcr, e.type) for e in events] == [(0, EV_POST_CODE), (7, EV_SEPARATOR)]
    assert replay(events) == server_replay(server_parse(log))
    assert set(replay(events)) == {"sha1"}


def test_unknown_and_uncomputable_banks_are_parsed_but_not_replayed() -> None:
    log = spec_header([(SHA256, 32), (0x0012, 32), (0x0099, 7)]) + agile(
        2, EV_POST_CODE, [(SHA256, bytes(32)), (0x0012, b"\1" * 32), (0x0099, b"\2" * 7)])
    (only,) = parse_event_log(log)
    assert set(only.digests) == {"sha256", "sm3_256", "alg_0x0099"}
    assert set(replay([only])) == {"sha256"}


def test_vendor_info_is_skipped_whatever_event_data_size_says() -> None:
    log = spec_header([(SHA256, 32)], vendor=b"vendor", size=32) + agile(
        1, EV_POST_CODE, [(SHA256, bytes(32))])
    assert [(e.pcr, e.type) for e in parse_event_log(log)] == [(1, EV_POST_CODE)]


def test_replay_refuses_a_digest_of_the_wrong_size() -> None:
    with pytest.raises(EventLogError, match="sha256 digest of 3 bytes on PCR 1"):
        replay([LogEvent(1, EV_POST_CODE, {"sha256": b"abc"})])


def test_truncated_log_at_every_length_names_the_offset_or_is_a_prefix() -> None:
    complete = parse_event_log(BOOT_LOG)
    prefixes = 0
    for length in range(len(BOOT_LOG)):
        try:
            events = parse_event_log(BOOT_LOG[:length])
        except EventLogError as error:
            assert re.search(r"offset \d+", str(error)), error
        else:  # cut exactly between two events
            assert events == complete[:len(events)]
            prefixes += 1
    assert prefixes == len(complete)  # after the header and after each event but the last


@pytest.mark.parametrize(("log", "message"), [
    (spec_header([(SHA256, 32)], pcr=1), "must be on PCR 0 with a zero digest"),
    (spec_header([(SHA256, 32)], digest=b"\1" * 20), "must be on PCR 0 with a zero digest"),
    (spec_header([(SHA256, 32)], size=27), "eventDataSize 27 is too small"),
    (spec_header([]), r"0 algorithms \(expected 1..32\)"),
    (spec_header([(SHA256, 20)]), "sha256 declared with digest size 20, expected 32"),
    (spec_header([(0x0099, 0)]), "digest size 0 out of range"),
    (spec_header([(0x0099, 129)]), "digest size 129 out of range"),
    (spec_header([(SHA256, 32), (SHA256, 32)]), "algorithm 0x000b repeated"),
    (spec_header([(SHA256, 32)]) + agile(32, 1, [(SHA256, bytes(32))]),
     "offset 65: PCR index 32 out of range"),
    (spec_header([(SHA256, 32)]) + agile(0, 1, [(SHA256, bytes(32))] * 2),
     "2 digests, the Spec ID event declares 1"),
    (spec_header([(SHA256, 32), (SHA1, 20)]) + agile(0, 1, [(SHA256, bytes(32))] * 2),
     "sha256 digest repeated"),
    (spec_header([(SHA256, 32)]) + agile(0, 1, [(SHA1, bytes(20))]),
     "algorithm 0x0004 is not declared"),
    (spec_header([(SHA256, 32)]) + agile(0, EV_NO_ACTION, [(SHA256, bytes(32))],
                                         b"StartupLocality\x00"),
     "StartupLocality event at offset 65 has no locality byte"),
    (sha1_event(40, EV_POST_CODE, b""), "offset 0: PCR index 40 out of range"),
    (sha1_event(0, EV_POST_CODE, b"x")[:-1] + b"", r"event 0 data needs 1 bytes, 0 remain"),
    (b"", "first event needs 32 bytes, 0 remain"),
    (bytes(MAX_LOG_BYTES + 1), "exceeds"),
])
def test_hostile_logs_are_refused(log: bytes, message: str) -> None:
    with pytest.raises(EventLogError, match=message):
        parse_event_log(log)


def test_log_must_be_bytes() -> None:
    with pytest.raises(EventLogError, match="bytes, not str"):
        parse_event_log("log")  # type: ignore[arg-type]


def test_too_many_events_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("vbios_client.attestation.eventlog.MAX_EVENTS", 2)
    log = b"".join(sha1_event(0, EV_POST_CODE, b"") for _ in range(3))
    with pytest.raises(EventLogError, match="more than 2 events"):
        parse_event_log(log)
