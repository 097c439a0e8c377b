"""Say what changed when the TPM refuses to unseal: PCRs, boot events, service files.

Compares the sealed-state record (PCR values, event log copy, measured files at
sealing time) with the present: the PCRs that differ, for each differing boot
PCR the first event that differs, was added or is missing, and for the service
PCR the files and configuration that changed.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence

from bios_ws.domain.eventlog import Event, parse_event_log
from bios_ws.launch.measure import describe_entry_changes
from bios_ws.launch.record import SealedState
from bios_ws.tpm.port import BOOT_PCRS, SERVICE_PCR

EV_NO_ACTION = 0x00000003
_PRINTABLE = frozenset(string.printable) - frozenset("\t\n\r\x0b\x0c")
_MAX_DATA_SHOWN = 48


def differing_pcrs(sealed: Mapping[int, bytes], current: Mapping[int, bytes]) -> list[int]:
    """PCR indexes whose current value differs from the sealed one, sorted."""
    return sorted(i for i in sealed if current.get(i) != sealed[i])


def describe_changes(
    state: SealedState,
    current_pcrs: Mapping[int, bytes],
    current_files: Mapping[str, bytes],
    sealed_log: bytes | None,
    current_log: bytes | None,
) -> list[str]:
    """One line per finding: which PCRs differ and why (events, files)."""
    pcrs = differing_pcrs(state.pcrs, current_pcrs)
    if not pcrs:
        return []
    names = ", ".join(str(i) for i in pcrs)
    lines = [f"PCR{'s' if len(pcrs) > 1 else ''} {names} (sha256) differ"
             " from the values sealed to"]
    boot = [i for i in pcrs if i in BOOT_PCRS]
    if boot:
        lines.extend(_boot_lines(boot, sealed_log, current_log))
    if SERVICE_PCR in pcrs:
        changes = describe_entry_changes(state.measured, current_files)
        if changes:
            lines.append(f"PCR {SERVICE_PCR} (service): the service code or configuration"
                         " changed since sealing:")
            lines.extend(f"  {line}" for line in changes)
        else:
            lines.append(f"PCR {SERVICE_PCR} (service): the measured files are unchanged;"
                         " the PCR was extended or reset by another process")
    return lines


def _boot_lines(pcrs: Sequence[int], sealed_log: bytes | None,
                current_log: bytes | None) -> list[str]:
    if sealed_log is None or current_log is None:
        which = "the event log at sealing time" if sealed_log is None else "the current event log"
        return [f"boot PCRs {', '.join(map(str, pcrs))}: {which} is not available,"
                " so the changed boot components cannot be named"]
    try:
        before, after = parse_event_log(sealed_log), parse_event_log(current_log)
    except ValueError as exc:
        return [f"boot PCRs {', '.join(map(str, pcrs))}: the event log cannot be read ({exc})"]
    lines: list[str] = []
    for pcr in pcrs:
        lines.append(f"PCR {pcr} (boot): {event_difference(_of(before, pcr), _of(after, pcr))}")
    return lines


def _of(events: Sequence[Event], pcr: int) -> list[Event]:
    return [e for e in events if e.pcr == pcr and e.type != EV_NO_ACTION]


def event_difference(sealed: Sequence[Event], current: Sequence[Event]) -> str:
    """The first differing, added or missing event of one PCR's two event lists."""
    for position, (old, new) in enumerate(zip(sealed, current, strict=False), start=1):
        if old.type != new.type or _sha256(old) != _sha256(new):
            return (f"event {position} differs: sealed {describe_event(old)};"
                    f" now {describe_event(new)}")
    if len(current) > len(sealed):
        return f"event {len(sealed) + 1} was added: {describe_event(current[len(sealed)])}"
    if len(sealed) > len(current):
        return f"event {len(current) + 1} is missing: {describe_event(sealed[len(current)])}"
    return ("the event log shows no change: the PCR was extended without a logged event"
            " (or the log does not belong to this boot)")


def describe_event(event: Event) -> str:
    digest = _sha256(event)
    text = f"{event.type_name} sha256 {digest.hex()[:16] if digest else '-'}"
    label = _printable(event.data)
    return f"{text} \"{label}\"" if label else text


def _sha256(event: Event) -> bytes | None:
    return event.digests.get("sha256")


def _printable(data: bytes) -> str:
    for encoding in ("ascii", "utf-16-le"):
        try:
            text = data.decode(encoding).rstrip("\x00")
        except UnicodeDecodeError:
            continue
        if text and all(c in _PRINTABLE for c in text):
            return text if len(text) <= _MAX_DATA_SHOWN else text[:_MAX_DATA_SHOWN] + "..."
    return ""
