"""The integrity verdict: a live log and live PCR values against reference measurements."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest

from bios_ws.domain.eventlog import Event, parse_event_log, replay, write_event_log
from bios_ws.domain.eventlog_types import (
    EV_EFI_ACTION,
    EV_NO_ACTION,
    EV_POST_CODE,
    EV_S_CRTM_VERSION,
    EV_SEPARATOR,
    event_type_name,
)
from bios_ws.domain.integrity import Finding, IntegrityVerdict, evaluate, needed_pcrs
from bios_ws.domain.reference import ReferenceEvent, ReferenceMeasurements

BANKS = ("sha1", "sha256")


def event(pcr: int, data: bytes, kind: int = EV_SEPARATOR,
          banks: Sequence[str] = BANKS) -> Event:
    digests = {bank: hashlib.new(bank, data).digest() for bank in banks}
    return Event(0, pcr, kind, event_type_name(kind), digests, data)


GOOD_BOOT = [event(0, b"crtm 1.0", EV_S_CRTM_VERSION), event(0, b"post", EV_POST_CODE),
             event(4, b"Calling EFI Application", EV_EFI_ACTION), event(0, b"\0" * 4),
             event(4, b"\0" * 4), event(7, b"\0" * 4)]


def log_of(events: Sequence[Event], banks: Sequence[str] = BANKS) -> bytes:
    """A log of these events with their digests in ``banks`` only."""
    kept = [event(e.pcr, e.data, e.type, banks) for e in events]
    return write_event_log(kept, banks)


def live_of(events: Sequence[Event], banks: Sequence[str] = BANKS) -> dict[str, dict[int, bytes]]:
    """The PCR values a TPM holds after extending exactly these events."""
    return replay(parse_event_log(log_of(events, banks)))


REFERENCE = ReferenceMeasurements.from_events(parse_event_log(log_of(GOOD_BOOT)), source="test")


def kinds(verdict: IntegrityVerdict) -> list[tuple[int | None, str]]:
    return [(finding.pcr, finding.kind) for finding in verdict.findings]


def test_a_good_boot_is_trusted() -> None:
    verdict = evaluate(REFERENCE, log_of(GOOD_BOOT), live_of(GOOD_BOOT))
    assert verdict.trusted and verdict.findings == ()
    assert verdict.checked_pcrs == (0, 4, 7)
    assert verdict.bank == "sha256" and verdict.reference_digest == REFERENCE.digest()
    assert verdict.summary() == "Trusted"
    assert verdict.to_dict() == {"trusted": True, "bank": "sha256", "findings": [],
                                 "reference_digest": REFERENCE.digest(), "checked_pcrs": [0, 4, 7]}
    assert evaluate(REFERENCE, log_of(GOOD_BOOT), live_of(GOOD_BOOT), "sha1").trusted


def test_one_changed_digest_is_an_event_mismatch_naming_pcr_and_event() -> None:
    changed = [*GOOD_BOOT[:2], event(4, b"Calling EVIL Application", EV_EFI_ACTION),
               *GOOD_BOOT[3:]]
    verdict = evaluate(REFERENCE, log_of(changed), live_of(changed))
    assert not verdict.trusted
    assert kinds(verdict) == [(4, "event-mismatch")]
    finding = verdict.findings[0]
    assert finding.event_index == 3
    observed = hashlib.sha256(b"Calling EVIL Application").hexdigest()
    allowed = hashlib.sha256(b"Calling EFI Application").hexdigest()
    assert finding.message == (f"event [0] (log event 3): sha256 digest {observed[:8]}..."
                               f"{observed[-4:]} is not allowed (allowed: {allowed[:8]}..."
                               f"{allowed[-4:]})")
    assert verdict.summary() == f"Untrusted: PCR 4: {finding.message}"


def test_a_log_altered_after_the_boot_also_fails_the_pcr_value() -> None:
    changed = [*GOOD_BOOT[:2], event(4, b"other", EV_EFI_ACTION), *GOOD_BOOT[3:]]
    verdict = evaluate(REFERENCE, log_of(changed), live_of(GOOD_BOOT))
    assert kinds(verdict) == [(4, "pcr-value"), (4, "event-mismatch")]
    assert "differs from the replay of the log" in verdict.findings[0].message


def test_an_extend_without_an_event_is_a_pcr_value_finding() -> None:
    live = live_of(GOOD_BOOT)
    live["sha256"][7] = hashlib.sha256(live["sha256"][7] + bytes(32)).digest()
    verdict = evaluate(REFERENCE, log_of(GOOD_BOOT), live)
    assert kinds(verdict) == [(7, "pcr-value")]
    assert verdict.findings[0].event_index is None
    assert evaluate(REFERENCE, log_of(GOOD_BOOT), live, "sha1").trusted  # sha1 bank untouched


def test_an_added_event_is_extra_and_a_removed_one_missing() -> None:
    added = [*GOOD_BOOT, event(4, b"late driver", EV_EFI_ACTION)]
    verdict = evaluate(REFERENCE, log_of(added), live_of(added))
    assert kinds(verdict) == [(4, "event-extra")]
    assert verdict.findings[0].event_index == 7
    assert verdict.findings[0].message == "1 more events than the reference's 2: log events 7"
    removed = [event for event in GOOD_BOOT if event is not GOOD_BOOT[5]]
    live = live_of(removed)
    live["sha256"][7] = bytes(32)  # never extended: a TPM reads zero
    verdict = evaluate(REFERENCE, log_of(removed), live)
    assert kinds(verdict) == [(7, "event-missing")]
    assert verdict.findings[0].message == ("1 fewer events than the reference's 1; the first"
                                           " missing is [0] EV_SEPARATOR")


def test_many_extra_events_are_one_finding_listing_the_first() -> None:
    added = [*GOOD_BOOT, *(event(7, bytes([n])) for n in range(5))]
    verdict = evaluate(REFERENCE, log_of(added), live_of(added))
    assert [f.message for f in verdict.findings] == [
        "5 more events than the reference's 1: log events 7, 8, 9, ..."]


def test_a_changed_type_is_named() -> None:
    changed = [*GOOD_BOOT[:5], event(7, b"\0" * 4, EV_POST_CODE)]
    verdict = evaluate(REFERENCE, log_of(changed), live_of(changed))
    assert [f.message for f in verdict.findings] == [
        "event [0] (log event 6): type EV_POST_CODE, the reference expects EV_SEPARATOR"]


def test_an_allowed_alternative_is_accepted() -> None:
    v1, v2 = event(0, b"firmware 2.1", EV_S_CRTM_VERSION), event(0, b"firmware 2.2",
                                                                 EV_S_CRTM_VERSION)
    reference = ReferenceMeasurements({0: (
        ReferenceEvent("EV_S_CRTM_VERSION", (v1.digests, {"sha256": v2.digests["sha256"]})),)})
    for boot in ([v1], [v2]):
        assert evaluate(reference, log_of(boot), live_of(boot)).trusted
    v3 = [event(0, b"firmware 3.0", EV_S_CRTM_VERSION)]
    verdict = evaluate(reference, log_of(v3), live_of(v3))
    assert kinds(verdict) == [(0, "event-mismatch")]
    assert verdict.findings[0].message.count("...") == 3  # observed and both allowed


def test_the_disagreeing_bank_is_named() -> None:
    good = event(4, b"app", EV_EFI_ACTION)
    reference = ReferenceMeasurements({4: (ReferenceEvent("EV_EFI_ACTION", (
        {"sha1": hashlib.sha1(b"other").digest(), "sha256": good.digests["sha256"]},)),)})
    verdict = evaluate(reference, log_of([good]), live_of([good]))
    assert "sha1 digest" in verdict.findings[0].message


def test_digests_matching_different_alternatives_do_not_match() -> None:
    good = event(4, b"app", EV_EFI_ACTION)
    reference = ReferenceMeasurements({4: (ReferenceEvent("EV_EFI_ACTION", (
        {"sha1": good.digests["sha1"], "sha256": bytes(32)},
        {"sha1": bytes(20), "sha256": good.digests["sha256"]})),)})
    verdict = evaluate(reference, log_of([good]), live_of([good]))
    assert verdict.findings[0].message.endswith(
        "its sha1, sha256 digests each match a different alternative, none matches them all")


def test_a_sha1_reference_shares_no_bank_with_a_sha256_log() -> None:
    reference = ReferenceMeasurements.from_events(
        parse_event_log(log_of(GOOD_BOOT, ["sha1"])))
    log = log_of(GOOD_BOOT, ["sha256"])
    verdict = evaluate(reference, log, live_of(GOOD_BOOT, ["sha256"]))
    assert {kind for _, kind in kinds(verdict)} == {"event-mismatch"}
    assert len(verdict.findings) == len(GOOD_BOOT)
    assert "shares no digest bank with the reference (log: sha256; reference: sha1)" in (
        verdict.findings[0].message)


def test_every_finding_is_reported_across_pcrs() -> None:
    changed = [event(0, b"crtm 9.9", EV_S_CRTM_VERSION), *GOOD_BOOT[1:5],
               event(7, b"x", EV_POST_CODE), event(7, b"y")]
    verdict = evaluate(REFERENCE, log_of(changed), live_of(GOOD_BOOT))
    assert kinds(verdict) == [(0, "pcr-value"), (0, "event-mismatch"), (7, "pcr-value"),
                              (7, "event-mismatch"), (7, "event-extra")]
    assert verdict.summary().startswith("Untrusted: PCR 0: live sha256 value")
    assert verdict.summary().count("; PCR ") == 4


def test_summary_spells_out_eight_findings_and_counts_the_rest() -> None:
    reference = ReferenceMeasurements({pcr: (ReferenceEvent("EV_SEPARATOR", (
        {"sha256": bytes(32)},)),) for pcr in range(10)})
    boot = [event(pcr, b"\0" * 4) for pcr in range(10)]
    verdict = evaluate(reference, log_of(boot), live_of(boot))
    assert len(verdict.findings) == 10
    assert verdict.summary().endswith("(and 2 more findings)")
    assert verdict.summary().count("PCR ") == 8


def test_without_a_reference_the_log_is_still_checked() -> None:
    verdict = evaluate(None, log_of(GOOD_BOOT), live_of(GOOD_BOOT))
    assert kinds(verdict) == [(None, "no-reference")]
    assert verdict.reference_digest is None and verdict.checked_pcrs == (0, 4, 7)
    assert verdict.summary() == "Untrusted: no reference measurements are set"
    live = live_of(GOOD_BOOT)
    live["sha256"][4] = bytes(32)
    assert kinds(evaluate(None, log_of(GOOD_BOOT), live)) == [(None, "no-reference"),
                                                              (4, "pcr-value")]


@pytest.mark.parametrize(("log", "message"), [
    (None, "no event log is available"),
    (b"", "the event log is malformed: event log of 0 bytes is too short"),
    (log_of(GOOD_BOOT)[:-3], "the event log is malformed: truncated event log at offset"),
])
def test_a_missing_or_malformed_log_is_a_finding(log: bytes | None, message: str) -> None:
    verdict = evaluate(REFERENCE, log, {})
    assert kinds(verdict) == [(None, "no-event-log")]
    assert verdict.findings[0].message.startswith(message)
    assert verdict.checked_pcrs == ()
    both = evaluate(None, log, {})
    assert kinds(both) == [(None, "no-reference"), (None, "no-event-log")]


def test_a_referenced_pcr_without_events_must_be_zero() -> None:
    reference = ReferenceMeasurements({**REFERENCE.pcrs, 5: (ReferenceEvent(
        "EV_SEPARATOR", ({"sha256": bytes(32)},)),)})
    live = live_of(GOOD_BOOT)
    live["sha256"][5] = bytes(32)
    verdict = evaluate(reference, log_of(GOOD_BOOT), live)
    assert kinds(verdict) == [(5, "event-missing")]
    live["sha256"][5] = b"\x01" * 32
    verdict = evaluate(reference, log_of(GOOD_BOOT), live)
    assert kinds(verdict) == [(5, "pcr-value"), (5, "event-missing")]


def test_a_log_without_the_checked_bank_cannot_explain_the_pcrs() -> None:
    log = log_of(GOOD_BOOT, ["sha1"])
    live = {"sha256": {pcr: b"\x02" * 32 for pcr in (0, 4, 7)}}
    verdict = evaluate(REFERENCE, log, live)
    assert [kind for _, kind in kinds(verdict)] == ["pcr-value"] * 3
    assert "the log has no sha256 digests for this PCR" in verdict.findings[0].message


def test_an_event_on_a_pcr_above_23_is_a_finding() -> None:
    boot = [*GOOD_BOOT, event(30, b"x")]
    assert needed_pcrs(REFERENCE, parse_event_log(log_of(boot))) == (0, 4, 7)
    verdict = evaluate(REFERENCE, log_of(boot), live_of(GOOD_BOOT))
    assert kinds(verdict) == [(30, "pcr-value")]
    assert verdict.findings[0].event_index == 7


def test_needed_pcrs_joins_reference_and_log() -> None:
    boot = [event(9, b"kernel"), event(2, b"spec", EV_NO_ACTION)]
    log = log_of(boot)
    assert needed_pcrs(REFERENCE, log) == (0, 4, 7, 9)
    assert needed_pcrs(REFERENCE, parse_event_log(log)) == (0, 4, 7, 9)
    assert needed_pcrs(None, log) == (9,)
    assert needed_pcrs(REFERENCE, b"garbage") == (0, 4, 7)
    assert needed_pcrs(None, None) == ()


def test_live_values_the_caller_failed_to_read_are_a_programming_error() -> None:
    log = log_of(GOOD_BOOT)
    live = live_of(GOOD_BOOT)
    del live["sha256"][4]
    with pytest.raises(ValueError, match=r"live sha256 values of PCRs \[4\] are missing"):
        evaluate(REFERENCE, log, live)
    with pytest.raises(ValueError, match="live PCR values of bank sha384 are missing"):
        evaluate(REFERENCE, log, live, "sha384")
    live["sha256"][4] = bytes(20)
    with pytest.raises(ValueError, match="live sha256 value of PCR 4 is not 32 bytes"):
        evaluate(REFERENCE, log, live)
    with pytest.raises(ValueError, match="unknown PCR bank 'sm3_256'"):
        evaluate(REFERENCE, log, live, "sm3_256")


def test_a_verdict_and_a_finding_refuse_inconsistent_values() -> None:
    finding = Finding(4, "pcr-value", "x")
    with pytest.raises(ValueError, match="trusted exactly when"):
        IntegrityVerdict(True, (finding,), (4,), "sha256", None)
    with pytest.raises(ValueError, match="trusted exactly when"):
        IntegrityVerdict(False, (), (4,), "sha256", None)
    for bad in ("", "Bad", "two words", "trailing-", "-x"):
        with pytest.raises(ValueError, match="is not a lowercase-hyphenated word"):
            Finding(4, bad, "x")
    assert Finding(None, "tpm-unavailable", "x").describe() == "x"  # a caller's own kind
    assert finding.to_dict() == {"pcr": 4, "kind": "pcr-value", "message": "x",
                                 "event_index": None}
