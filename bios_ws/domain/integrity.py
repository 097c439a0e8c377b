"""The boot integrity verdict: the live boot state against the reference measurements.

The live state is the current event log and the PCR values the TPM reports.
Two questions are asked, and every failed check becomes a ``Finding`` (all of
them, not the first only):

1. Does the log explain the PCRs? For every PCR of interest the replay of the
   live log must equal the live value ("pcr-value"); otherwise something was
   extended without a logged event, or the log was altered.
2. Is the log the reference? For every referenced PCR, the n-th extended event
   must match the reference's n-th event ("event-mismatch", "event-missing",
   "event-extra"). EV_NO_ACTION events are never extended and never compared.

Pure functions: no clock, no I/O. A malformed log is a finding, never an exception;
a PCR value the caller failed to supply is a programming error (``ValueError``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bios_ws.domain.eventlog import Event, EventLogError, parse_event_log, replay
from bios_ws.domain.eventlog_types import EV_NO_ACTION
from bios_ws.domain.reference import (
    BANK_SIZES,
    MAX_REFERENCE_PCR,
    ReferenceEvent,
    ReferenceMeasurements,
)

__all__ = [
    "FINDING_KINDS",
    "Finding",
    "IntegrityVerdict",
    "evaluate",
    "needed_pcrs",
]

PCR_VALUE = "pcr-value"
EVENT_MISMATCH = "event-mismatch"
EVENT_MISSING = "event-missing"
EVENT_EXTRA = "event-extra"
NO_REFERENCE = "no-reference"
NO_EVENT_LOG = "no-event-log"
#: The kinds ``evaluate`` reports; callers may add host-wide ones ("tpm-unavailable").
FINDING_KINDS = (PCR_VALUE, EVENT_MISMATCH, EVENT_MISSING, EVENT_EXTRA, NO_REFERENCE,
                 NO_EVENT_LOG)
_KIND = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
#: How many findings ``summary`` spells out before it counts the rest.
SUMMARY_FINDINGS = 8
#: How many allowed digests (and extra event indexes) a message lists.
_LISTED = 3


@dataclass(frozen=True)
class Finding:
    """One failed check. ``pcr`` is None for host-wide findings ("no-reference", "no-event-log").

    ``event_index`` is the index of the live log's event concerned (the first
    one, for "event-extra"), when there is one.
    """

    pcr: int | None
    kind: str
    message: str
    event_index: int | None = None

    def __post_init__(self) -> None:
        if not _KIND.fullmatch(self.kind):
            raise ValueError(f"finding kind {self.kind!r:.60} is not a lowercase-hyphenated word")

    def describe(self) -> str:
        return self.message if self.pcr is None else f"PCR {self.pcr}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"pcr": self.pcr, "kind": self.kind, "message": self.message,
                "event_index": self.event_index}


@dataclass(frozen=True)
class IntegrityVerdict:
    """Trusted when no check failed; otherwise Untrusted with every finding."""

    trusted: bool
    findings: tuple[Finding, ...]
    checked_pcrs: tuple[int, ...]
    bank: str
    reference_digest: str | None

    def __post_init__(self) -> None:
        if self.trusted == bool(self.findings):
            raise ValueError("a verdict is trusted exactly when it has no findings")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: digests are hexadecimal text inside the messages."""
        return {"trusted": self.trusted, "bank": self.bank,
                "reference_digest": self.reference_digest,
                "checked_pcrs": list(self.checked_pcrs),
                "findings": [finding.to_dict() for finding in self.findings]}

    def summary(self) -> str:
        """One line: "Trusted" or "Untrusted: PCR 4: ...; PCR 7: ..."."""
        if self.trusted:
            return "Trusted"
        shown = "; ".join(finding.describe() for finding in self.findings[:SUMMARY_FINDINGS])
        more = len(self.findings) - SUMMARY_FINDINGS
        return f"Untrusted: {shown}" + (f" (and {more} more findings)" if more > 0 else "")


def needed_pcrs(reference: ReferenceMeasurements | None,
                events: Sequence[Event] | bytes | None) -> tuple[int, ...]:
    """The PCRs whose live values ``evaluate`` needs, ascending.

    The referenced PCRs and the PCRs (0..23) with extended events in the log;
    ``events`` may be the parsed log or its bytes (an unparsable log adds none).
    """
    wanted = set(reference.pcrs) if reference is not None else set()
    if isinstance(events, bytes | bytearray):
        try:
            events = parse_event_log(bytes(events))
        except EventLogError:
            events = None
    if events is not None:
        wanted.update(event.pcr for event in _extended(events)
                      if event.pcr <= MAX_REFERENCE_PCR)
    return tuple(sorted(wanted))


def evaluate(reference: ReferenceMeasurements | None, event_log: bytes | None,
             live_pcrs: Mapping[str, Mapping[int, bytes]],
             bank: str = "sha256") -> IntegrityVerdict:
    """Compare the live log and PCR values of ``bank`` with the reference.

    ``live_pcrs`` maps bank -> PCR -> value and must hold, in ``bank``, every PCR
    ``needed_pcrs(reference, log)`` names (ValueError otherwise).
    """
    if bank not in BANK_SIZES:
        raise ValueError(f"unknown PCR bank {bank!r} (known: {', '.join(BANK_SIZES)})")
    reference_digest = reference.digest() if reference is not None else None
    findings: list[Finding] = []
    if reference is None:
        findings.append(Finding(None, NO_REFERENCE, "no reference measurements are set"))
    events, values, problem = _read_log(event_log)
    if events is None or values is None:
        findings.append(Finding(None, NO_EVENT_LOG, problem))
        return IntegrityVerdict(False, tuple(findings), (), bank, reference_digest)
    checked = needed_pcrs(reference, events)
    live = _live_values(live_pcrs, bank, checked)
    by_pcr: dict[int, list[Event]] = {}
    for event in _extended(events):
        by_pcr.setdefault(event.pcr, []).append(event)
    for pcr in sorted(set(by_pcr) - set(checked)):
        first = by_pcr[pcr][0]
        findings.append(Finding(pcr, PCR_VALUE, f"log event {first.index} extends PCR {pcr};"
                                f" a TPM has PCRs 0..{MAX_REFERENCE_PCR} only", first.index))
    for pcr in checked:
        observed = by_pcr.get(pcr, [])
        findings.extend(_check_value(pcr, live[pcr], values.get(bank, {}).get(pcr),
                                     observed, bank))
        if reference is not None and pcr in reference.pcrs:
            findings.extend(_compare_events(pcr, reference.pcrs[pcr], observed, bank))
    findings.sort(key=lambda finding: -1 if finding.pcr is None else finding.pcr)
    return IntegrityVerdict(not findings, tuple(findings), checked, bank, reference_digest)


def _extended(events: Iterable[Event]) -> Iterable[Event]:
    return (event for event in events if event.type != EV_NO_ACTION)


def _read_log(event_log: bytes | None) -> tuple[
        list[Event] | None, dict[str, dict[int, bytes]] | None, str]:
    """The parsed log and its replay, or (None, None, why not)."""
    if event_log is None:
        return None, None, "no event log is available"
    try:
        events = parse_event_log(event_log)
        return events, replay(events), ""
    except EventLogError as error:
        return None, None, f"the event log is malformed: {error}"


def _live_values(live_pcrs: Mapping[str, Mapping[int, bytes]], bank: str,
                 checked: Sequence[int]) -> dict[int, bytes]:
    if not checked:
        return {}
    values = live_pcrs.get(bank)
    if values is None:
        raise ValueError(f"live PCR values of bank {bank} are missing")
    missing = [pcr for pcr in checked if pcr not in values]
    if missing:
        raise ValueError(f"live {bank} values of PCRs {missing} are missing (read needed_pcrs)")
    size = BANK_SIZES[bank]
    for pcr in checked:
        value = values[pcr]
        if not isinstance(value, bytes) or len(value) != size:
            raise ValueError(f"live {bank} value of PCR {pcr} is not {size} bytes")
    return {pcr: values[pcr] for pcr in checked}


def _short(digest: bytes) -> str:
    text = digest.hex()
    return text if len(text) <= 16 else f"{text[:8]}...{text[-4:]}"


def _check_value(pcr: int, live: bytes, replayed: bytes | None, observed: Sequence[Event],
                 bank: str) -> list[Finding]:
    if replayed is None:
        if observed:
            return [Finding(pcr, PCR_VALUE, f"the log has no {bank} digests for this PCR, so"
                            f" its live value {_short(live)} is unexplained")]
        replayed = bytes(BANK_SIZES[bank])  # never extended: still zero
    if live == replayed:
        return []
    return [Finding(pcr, PCR_VALUE, f"live {bank} value {_short(live)} differs from the replay"
                    f" of the log {_short(replayed)}: extended without a logged event,"
                    " or the log was altered")]


def _compare_events(pcr: int, expected: Sequence[ReferenceEvent], observed: Sequence[Event],
                    bank: str) -> list[Finding]:
    findings: list[Finding] = []
    for position, (wanted, event) in enumerate(zip(expected, observed, strict=False)):
        if wanted.matches(event.type_name, event.digests):
            continue
        problems = []
        if event.type_name != wanted.type_name:
            problems.append(f"type {event.type_name}, the reference expects {wanted.type_name}")
        if not wanted.digest_matches(event.digests):
            problems.append(_digest_problem(wanted, event, bank))
        findings.append(Finding(pcr, EVENT_MISMATCH, f"event [{position}] (log event"
                                f" {event.index}): {'; '.join(problems)}", event.index))
    if len(observed) < len(expected):
        first = len(observed)
        findings.append(Finding(pcr, EVENT_MISSING, f"{len(expected) - first} fewer events than"
                                f" the reference's {len(expected)}; the first missing is"
                                f" [{first}] {expected[first].type_name}"))
    elif len(observed) > len(expected):
        extra = observed[len(expected):]
        listed = ", ".join(str(event.index) for event in extra[:_LISTED])
        if len(extra) > _LISTED:
            listed += ", ..."
        findings.append(Finding(pcr, EVENT_EXTRA, f"{len(extra)} more events than the"
                                f" reference's {len(expected)}: log events {listed}",
                                extra[0].index))
    return findings


def _digest_problem(wanted: ReferenceEvent, event: Event, bank: str) -> str:
    reference_banks = sorted({name for alternative in wanted.alternatives
                              for name in alternative})
    shared = [name for name in reference_banks if name in event.digests]
    if not shared:
        observed_banks = ", ".join(sorted(event.digests))
        return (f"shares no digest bank with the reference (log: {observed_banks};"
                f" reference: {', '.join(reference_banks)})")
    for shown in sorted(shared, key=lambda name: name != bank):
        allowed = [alternative[shown] for alternative in wanted.alternatives
                   if shown in alternative]
        if event.digests[shown] not in allowed:
            listed = ", ".join(_short(digest) for digest in allowed[:_LISTED])
            if len(allowed) > _LISTED:
                listed += f", and {len(allowed) - _LISTED} more"
            return (f"{shown} digest {_short(event.digests[shown])} is not allowed"
                    f" (allowed: {listed})")
    return (f"its {', '.join(shared)} digests each match a different alternative,"
            " none matches them all")
