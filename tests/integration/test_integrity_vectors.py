"""The integrity verdict on real TCG event logs (tpm2-tools fixtures, read in place).

A reference taken from a log must find that same log Trusted in every bank it
carries, and one changed digest must make it Untrusted.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bios_ws.domain.eventlog import Event, parse_event_log, replay
from bios_ws.domain.eventlog_types import EV_NO_ACTION
from bios_ws.domain.integrity import evaluate, needed_pcrs
from bios_ws.domain.reference import BANK_SIZES, ReferenceMeasurements

VECTORS = Path("/work/shared/vectors/eventlogs")
VECTOR_FILES = sorted(VECTORS.glob("*.bin"))
MANIFEST_DOC = Path(__file__).resolve().parents[2] / "docs" / "reference-manifest.md"

CASES = [(path, bank) for path in VECTOR_FILES
         for bank in sorted(replay(parse_event_log(path.read_bytes())))
         if bank in BANK_SIZES]


def test_there_are_vectors_in_every_bank() -> None:
    assert len(VECTOR_FILES) >= 12
    assert {bank for _, bank in CASES} == set(BANK_SIZES)


@pytest.mark.parametrize(("path", "bank"), CASES, ids=[f"{p.name}-{b}" for p, b in CASES])
def test_a_log_is_trusted_against_its_own_reference(path: Path, bank: str) -> None:
    log = path.read_bytes()
    events = parse_event_log(log)
    reference = ReferenceMeasurements.from_events(events, source=path.name)
    assert ReferenceMeasurements.from_manifest(reference.to_json()) == reference
    live = replay(events)
    verdict = evaluate(reference, log, live, bank)
    assert verdict.trusted, verdict.summary()
    assert verdict.checked_pcrs == needed_pcrs(reference, events)
    assert set(verdict.checked_pcrs) == {e.pcr for e in events if e.type != EV_NO_ACTION}


def _unique_digest(log: bytes, events: list[Event], bank: str) -> tuple[Event, int]:
    """An extended event whose ``bank`` digest occurs once in the log, and its offset."""
    for event in events:
        digest = event.digests.get(bank)
        if event.type != EV_NO_ACTION and digest and log.count(digest) == 1:
            return event, log.index(digest)
    raise AssertionError("no extended event with a unique digest")


@pytest.mark.parametrize(("path", "bank"), CASES, ids=[f"{p.name}-{b}" for p, b in CASES])
def test_one_changed_digest_makes_the_log_untrusted(path: Path, bank: str) -> None:
    log = path.read_bytes()
    events = parse_event_log(log)
    reference = ReferenceMeasurements.from_events(events, source=path.name)
    changed_event, offset = _unique_digest(log, events, bank)
    altered = bytearray(log)
    altered[offset] ^= 0x01
    verdict = evaluate(reference, bytes(altered), replay(events), bank)
    assert not verdict.trusted
    found = {(finding.pcr, finding.kind) for finding in verdict.findings}
    assert found == {(changed_event.pcr, "pcr-value"), (changed_event.pcr, "event-mismatch")}
    mismatch = next(f for f in verdict.findings if f.kind == "event-mismatch")
    assert mismatch.event_index == changed_event.index
    assert f"{bank} digest" in mismatch.message


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda p: p.name)
def test_a_truncated_log_is_untrusted_without_an_exception(path: Path) -> None:
    log = path.read_bytes()
    events = parse_event_log(log)
    reference = ReferenceMeasurements.from_events(events, source=path.name)
    verdict = evaluate(reference, log[:-1], replay(events))
    assert [finding.kind for finding in verdict.findings] == ["no-event-log"]


def test_the_documented_example_manifest_is_valid() -> None:
    text = MANIFEST_DOC.read_text(encoding="utf-8")
    example = re.search(r"```json\n(.*?)```", text, re.DOTALL)
    assert example is not None
    reference = ReferenceMeasurements.from_manifest(example.group(1))
    assert reference.pcr_indexes == (0, 4)
    assert len(reference.pcrs[0][0].alternatives) == 2
