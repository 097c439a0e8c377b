"""Reference measurements: built from a log, parsed from a manifest, refused when malformed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import pytest

from bios_ws.domain.eventlog import Event
from bios_ws.domain.eventlog_types import (
    EV_EFI_ACTION,
    EV_NO_ACTION,
    EV_POST_CODE,
    EV_SEPARATOR,
    event_type_name,
)
from bios_ws.domain.reference import (
    MANIFEST_FORMAT,
    MAX_MANIFEST_BYTES,
    MAX_REFERENCE_EVENTS,
    ReferenceError,
    ReferenceEvent,
    ReferenceMeasurements,
)

SHA1_A, SHA256_A = "a" * 40, "a" * 64
SHA256_B = "b" * 64
SIZES = {"sha1": 20, "sha256": 32, "sha384": 48, "sha512": 64, "sm3_256": 32}


def event(index: int, pcr: int, data: bytes, kind: int = EV_SEPARATOR,
          banks: Sequence[str] = ("sha1", "sha256")) -> Event:
    digests = {bank: hashlib.sha512(bank.encode() + data).digest()[:SIZES[bank]]
               for bank in banks}
    return Event(index, pcr, kind, event_type_name(kind), digests, data)


def manifest(pcrs: Any, **top: Any) -> str:
    return json.dumps({"format": MANIFEST_FORMAT, "pcrs": pcrs, **top})


def one_event(**fields: Any) -> dict[str, Any]:
    return {"type": "EV_SEPARATOR", "digests": [{"sha256": SHA256_A}], **fields}


# -- from_events ------------------------------------------------------------------


def test_from_events_keeps_extended_events_per_pcr_in_order() -> None:
    events = [event(0, 0, b"spec", EV_NO_ACTION, ("sha1",)), event(1, 0, b"crtm", EV_POST_CODE),
              event(2, 4, b"action", EV_EFI_ACTION), event(3, 0, b"sep"), event(4, 4, b"sep")]
    reference = ReferenceMeasurements.from_events(events, source="host-7", description="lab")
    assert reference.pcr_indexes == (0, 4)
    assert reference.event_count == 4
    assert [e.type_name for e in reference.pcrs[0]] == ["EV_POST_CODE", "EV_SEPARATOR"]
    assert [e.type_name for e in reference.pcrs[4]] == ["EV_EFI_ACTION", "EV_SEPARATOR"]
    only = reference.pcrs[4][0].alternatives
    assert len(only) == 1 and dict(only[0]) == events[2].digests
    assert (reference.source, reference.description) == ("host-7", "lab")


def test_from_events_leaves_unknown_banks_out() -> None:
    reference = ReferenceMeasurements.from_events([event(1, 2, b"x", banks=("sha256", "sm3_256"))])
    assert set(reference.pcrs[2][0].alternatives[0]) == {"sha256"}


def test_from_events_refuses_an_event_without_a_known_bank() -> None:
    with pytest.raises(ReferenceError, match="event 5: no digest in a known bank"):
        ReferenceMeasurements.from_events([event(5, 2, b"x", banks=("sm3_256",))])


def test_from_events_refuses_a_pcr_a_tpm_does_not_have() -> None:
    with pytest.raises(ReferenceError, match="event 1: PCR 24 is out of range"):
        ReferenceMeasurements.from_events([event(1, 24, b"x")])


def test_from_events_of_no_extended_event_is_an_empty_reference() -> None:
    reference = ReferenceMeasurements.from_events([event(0, 0, b"s", EV_NO_ACTION)])
    assert reference.pcr_indexes == () and reference.event_count == 0


# -- matching ---------------------------------------------------------------------


def test_an_alternative_matches_when_every_shared_bank_agrees() -> None:
    a1, a256, b256 = bytes(20), bytes(32), b"\x01" * 32
    expected = ReferenceEvent("EV_SEPARATOR", ({"sha1": a1, "sha256": a256}, {"sha256": b256}))
    assert expected.matches("EV_SEPARATOR", {"sha1": a1, "sha256": a256})
    assert expected.matches("EV_SEPARATOR", {"sha256": a256})  # one shared bank suffices
    assert expected.matches("EV_SEPARATOR", {"sha1": b"\x09" * 20, "sha256": b256})
    assert not expected.matches("EV_SEPARATOR", {"sha1": b"\x09" * 20, "sha256": a256})
    assert not expected.matches("EV_SEPARATOR", {"sha384": bytes(48)})  # nothing shared
    assert not expected.matches("EV_POST_CODE", {"sha256": a256})


def test_reference_event_refuses_bad_alternatives() -> None:
    with pytest.raises(ReferenceError, match=r"digests\[0\].sha256: expected a 32-byte"):
        ReferenceEvent("EV_SEPARATOR", ({"sha256": bytes(20)},))
    with pytest.raises(ReferenceError, match=r"digests\[0\].md5: unknown bank"):
        ReferenceEvent("EV_SEPARATOR", ({"md5": bytes(16)},))
    with pytest.raises(ReferenceError, match=r"digests\[0\]: expected at least one"):
        ReferenceEvent("EV_SEPARATOR", ({},))
    with pytest.raises(ReferenceError, match=r"digests: 0 alternatives"):
        ReferenceEvent("EV_SEPARATOR", ())
    with pytest.raises(ReferenceError, match=r"digests: 17 alternatives"):
        ReferenceEvent("EV_SEPARATOR", tuple({"sha256": bytes(32)} for _ in range(17)))
    with pytest.raises(ReferenceError, match="digests: expected a sequence"):
        ReferenceEvent("EV_SEPARATOR", {"sha256": bytes(32)})  # type: ignore[arg-type]
    with pytest.raises(ReferenceError, match="type: EV_NO_ACTION events are never extended"):
        ReferenceEvent("EV_NO_ACTION", ({"sha256": bytes(32)},))


def test_reference_is_frozen_and_independent_of_the_caller_dicts() -> None:
    alternative = {"sha256": bytes(32)}
    pcrs: dict[int, tuple[ReferenceEvent, ...]] = {
        4: (ReferenceEvent("EV_SEPARATOR", (alternative,)),)}
    reference = ReferenceMeasurements(pcrs)
    alternative["sha256"] = b"\x01" * 32
    pcrs[5] = ()
    assert reference.pcr_indexes == (4,)
    assert reference.pcrs[4][0].alternatives[0]["sha256"] == bytes(32)
    with pytest.raises(TypeError):
        reference.pcrs[6] = ()  # type: ignore[index]


@pytest.mark.parametrize(("pcrs", "message"), [
    ({24: ()}, "pcrs: 24 is not a PCR index 0..23"),
    ({-1: ()}, "pcrs: -1 is not a PCR index"),
    ({True: ()}, "pcrs: True is not a PCR index"),
    ({"4": ()}, "pcrs: '4' is not a PCR index"),
    ({4: ("EV_SEPARATOR",)}, 'pcrs."4": expected a sequence of ReferenceEvent'),
])
def test_constructor_refuses_bad_pcrs(pcrs: Any, message: str) -> None:
    with pytest.raises(ReferenceError) as refused:
        ReferenceMeasurements(pcrs)
    assert str(refused.value) == message or str(refused.value).startswith(message)


def test_constructor_refuses_too_many_events_and_long_texts() -> None:
    expected = ReferenceEvent("EV_SEPARATOR", ({"sha256": bytes(32)},))
    with pytest.raises(ReferenceError, match="more than 10000 events"):
        ReferenceMeasurements({0: (expected,) * 6000, 1: (expected,) * 4001})
    with pytest.raises(ReferenceError, match="description: 1025 characters"):
        ReferenceMeasurements({}, description="x" * 1025)
    with pytest.raises(ReferenceError, match="source: control characters"):
        ReferenceMeasurements({}, source="a\nb")


# -- manifests --------------------------------------------------------------------


def test_manifest_round_trips_canonically() -> None:
    events = [event(1, 0, b"crtm", EV_POST_CODE), event(2, 10, b"ima"), event(3, 4, b"sep")]
    reference = ReferenceMeasurements.from_events(events, source="s", description="d é")
    text = reference.to_json()
    again = ReferenceMeasurements.from_manifest(text)
    assert again == reference
    assert again.to_json() == text and again.digest() == reference.digest()
    assert text.isascii() and list(json.loads(text)) == ["description", "format", "pcrs", "source"]
    assert list(json.loads(text)["pcrs"]) == ["0", "10", "4"]


def test_digest_identifies_the_content() -> None:
    reference = ReferenceMeasurements.from_events([event(1, 0, b"a")])
    other = ReferenceMeasurements.from_events([event(1, 0, b"b")])
    renamed = ReferenceMeasurements.from_events([event(1, 0, b"a")], description="other")
    assert len(reference.digest()) == 64
    assert reference.digest() == ReferenceMeasurements.from_events([event(1, 0, b"a")]).digest()
    assert len({reference.digest(), other.digest(), renamed.digest()}) == 3


def test_manifest_accepts_alternatives_uppercase_hex_and_empty_pcrs() -> None:
    text = manifest({"0": [{"type": "EV_S_CRTM_VERSION",
                            "digests": [{"sha256": SHA256_A.upper(), "sha1": SHA1_A},
                                        {"sha256": SHA256_B}]}],
                     "7": [], "5": [{"type": "EV_UNKNOWN_0x000000FF",
                                     "digests": [{"sha512": "c" * 128, "sha384": "d" * 96}]}]})
    reference = ReferenceMeasurements.from_manifest(text)
    assert reference.pcr_indexes == (0, 5, 7)
    assert reference.pcrs[7] == ()
    alternatives = reference.pcrs[0][0].alternatives
    assert alternatives[0]["sha256"] == bytes.fromhex(SHA256_A)
    assert alternatives[1]["sha256"] == bytes.fromhex(SHA256_B)
    assert (reference.source, reference.description) == ("", "")


def test_manifest_refuses_text_over_the_size_limit() -> None:
    padding = " " * (MAX_MANIFEST_BYTES + 1 - len(manifest({})))
    with pytest.raises(ReferenceError, match="manifest: larger than"):
        ReferenceMeasurements.from_manifest(manifest({}) + padding)
    assert ReferenceMeasurements.from_manifest(manifest({}) + padding[1:]).pcr_indexes == ()


def test_manifest_refuses_more_events_than_the_limit() -> None:
    first = [one_event()] * (MAX_REFERENCE_EVENTS // 2)
    second = [one_event()] * (MAX_REFERENCE_EVENTS // 2 + 1)
    with pytest.raises(ReferenceError, match=r'pcrs."1": more than 10000 events in all'):
        ReferenceMeasurements.from_manifest(manifest({"0": first, "1": second}))


def test_manifest_is_text() -> None:
    with pytest.raises(TypeError):
        ReferenceMeasurements.from_manifest(manifest({}).encode())  # type: ignore[arg-type]


HEX_EVENTS = [one_event(), one_event(), {"type": "EV_SEPARATOR", "digests": [{"sha256": "ab"}]}]

MALFORMED: list[tuple[str, str]] = [
    ("{", "manifest: not valid JSON: Expecting property name enclosed in double quotes"),
    ("[]", "manifest: expected a JSON object"),
    ("[" * 100_000, "manifest: "),
    (json.dumps({"pcrs": {}}), 'manifest: missing key "format"'),
    (json.dumps({"format": MANIFEST_FORMAT}), 'manifest: missing key "pcrs"'),
    (manifest({}, format="bios-ws-reference-v2"), 'format: "bios-ws-reference-v2" is not'),
    (manifest({}, format=1), "format: a non-string is not"),
    (manifest({}, pcr={}), '"pcr": unknown key (allowed: description, format, pcrs, source)'),
    ('{"format": "bios-ws-reference-v1", "pcrs": {}, "pcrs": {"0": []}}',
     'manifest: key "pcrs" appears more than once'),
    ('{"format": "bios-ws-reference-v1", "pcrs": {"4": [], "4": []}}',
     'pcrs: key "4" appears more than once'),
    (manifest([]), "pcrs: expected a JSON object"),
    (manifest({"04": []}), 'pcrs."04": expected a PCR index 0..23 as a decimal string'),
    (manifest({"24": []}), 'pcrs."24": expected a PCR index 0..23'),
    (manifest({"-1": []}), 'pcrs."-1": expected a PCR index'),
    (manifest({"x" * 100: []}), 'pcrs."xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...": expected'),
    (manifest({"4": {}}), 'pcrs."4": expected a list of events'),
    (manifest({"4": ["EV_SEPARATOR"]}), 'pcrs."4"[0]: expected a JSON object'),
    (manifest({"4": [one_event(comment="x")]}),
     'pcrs."4"[0]."comment": unknown key (allowed: digests, type)'),
    (manifest({"4": [{"type": "EV_SEPARATOR"}]}), 'pcrs."4"[0]: missing key "digests"'),
    (manifest({"4": [one_event(type=4)]}), 'pcrs."4"[0].type: expected an event type name'),
    (manifest({"4": [one_event(type="EV_BOGUS")]}),
     'pcrs."4"[0].type: "EV_BOGUS" is not an event type name'),
    (manifest({"4": [one_event(type="EV_UNKNOWN_0x00000004")]}),
     'pcrs."4"[0].type: "EV_UNKNOWN_0x00000004" is not an event type name'),
    (manifest({"4": [one_event(type="EV_NO_ACTION")]}),
     'pcrs."4"[0].type: EV_NO_ACTION events are never extended'),
    (manifest({"4": [one_event(digests={"sha256": SHA256_A})]}),
     'pcrs."4"[0].digests: expected a list of alternatives'),
    (manifest({"4": [one_event(digests=[])]}), 'pcrs."4"[0].digests: 0 alternatives (expected'),
    (manifest({"4": [one_event(digests=[{"sha256": SHA256_A}] * 17)]}),
     'pcrs."4"[0].digests: 17 alternatives (expected 1..16)'),
    (manifest({"4": [one_event(digests=[SHA256_A])]}),
     'pcrs."4"[0].digests[0]: expected a JSON object'),
    (manifest({"4": [one_event(digests=[{}])]}),
     'pcrs."4"[0].digests[0]: expected at least one bank digest'),
    (manifest({"4": [one_event(digests=[{"sm3_256": SHA256_A}])]}),
     'pcrs."4"[0].digests[0]."sm3_256": unknown bank (known: sha1, sha256, sha384, sha512)'),
    (manifest({"4": HEX_EVENTS}), 'pcrs."4"[2].digests[0].sha256: expected 64 hex digits'),
    (manifest({"4": [one_event(digests=[{"sha1": "g" * 40}])]}),
     'pcrs."4"[0].digests[0].sha1: expected 40 hex digits'),
    (manifest({"4": [one_event(digests=[{"sha256": " " + SHA256_A[1:]}])]}),
     'pcrs."4"[0].digests[0].sha256: expected 64 hex digits'),
    (manifest({"4": [one_event(digests=[{"sha256": 12}])]}),
     'pcrs."4"[0].digests[0].sha256: expected 64 hex digits'),
    ('{"format": "bios-ws-reference-v1", "pcrs": {"4": [{"type": "EV_SEPARATOR", "digests":'
     f' [{{"sha256": "{SHA256_A}", "sha256": "{SHA256_B}"}}]}}]}}}}',
     'pcrs."4"[0].digests[0]: key "sha256" appears more than once'),
    (manifest({}, description="x" * 1025), "description: 1025 characters (at most 1024)"),
    (manifest({}, description=["x"]), "description: expected a string"),
    (manifest({}, source="a\x1b[31m"), "source: control characters are not allowed"),
    ('{"format": "bios-ws-reference-v1", "pcrs": {}, "description": NaN}',
     "manifest: NaN is not valid JSON"),
]


@pytest.mark.parametrize(("text", "message"), MALFORMED, ids=[m for _, m in MALFORMED])
def test_malformed_manifest_is_refused_naming_where(text: str, message: str) -> None:
    with pytest.raises(ReferenceError) as refused:
        ReferenceMeasurements.from_manifest(text)
    assert str(refused.value).startswith(message)
