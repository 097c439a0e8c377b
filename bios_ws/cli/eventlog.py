"""`vbios eventlog show|replay FILE [--json]`: read a TCG boot event log, for the admin.

The admin checks what a host (or the development TPM) measured at boot:

    vbios eventlog show /sys/kernel/security/tpm0/binary_bios_measurements
    vbios eventlog show FILE --json      # [{"index", "pcr", "type", "digests", "data_size"}]
    vbios eventlog replay FILE           # the PCR values the log implies, per bank
    vbios eventlog replay FILE --json    # {"sha256": {"0": "hex", ...}, ...}

`show` prints every event (the Spec ID header event is event 0), like
`tpm2_eventlog` does: number, PCR index, event type name, each bank's digest and
the event data size. `replay` extends the digests as the TPM would and prints
each bank's PCRs that have events (digests in lower-case hexadecimal). The
development TPM's log is the one `vbios tpm start` names.

The file is hostile input: it is read bounded (``MAX_LOG_BYTES``), and a
missing, unreadable, oversized or malformed log is refused with an
``AdminError`` naming the file (and, for a malformed log, the parser's message
with its byte offset); ``bios_ws.cli`` prints it as one line and exits 1.
"""

from __future__ import annotations

import argparse
import os
import stat
from collections.abc import Sequence
from pathlib import Path

from bios_ws.cli.output import print_json
from bios_ws.domain.eventlog import MAX_LOG_BYTES, Event, EventLogError, parse_event_log, replay
from bios_ws.errors import AdminError

__all__ = [
    "events_to_json",
    "format_events",
    "format_pcrs",
    "pcrs_to_json",
    "read_event_log",
    "register",
]

Subparsers = argparse._SubParsersAction
PcrValues = dict[str, dict[int, bytes]]


def register(commands: Subparsers[argparse.ArgumentParser]) -> None:
    eventlog = commands.add_parser(
        "eventlog", help="show or replay a TCG boot event log (binary_bios_measurements)")
    eventlog_commands = eventlog.add_subparsers(dest="eventlog_command", required=True,
                                                metavar="COMMAND")
    show = eventlog_commands.add_parser(
        "show", help="print every event: PCR, type, digests per bank, data size")
    show.set_defaults(run=run_show)
    replay_command = eventlog_commands.add_parser(
        "replay", help="print the PCR values the log implies, per bank")
    replay_command.set_defaults(run=run_replay)
    for command in (show, replay_command):
        command.add_argument("file", metavar="FILE", help="the binary event log to read")
        command.add_argument("--json", action="store_true", help="print JSON")


def run_show(args: argparse.Namespace) -> int:
    path = Path(args.file)
    events = read_event_log(path)
    if args.json:
        print_json(events_to_json(events))
    else:
        print(format_events(events))
    return 0


def run_replay(args: argparse.Namespace) -> int:
    path = Path(args.file)
    events = read_event_log(path)
    try:
        values = replay(events)
    except EventLogError as exc:
        raise AdminError(f"event log {_shown(path)} is malformed: {exc}") from None
    if args.json:
        print_json(pcrs_to_json(values))
    else:
        print(format_pcrs(values))
    return 0


def read_event_log(path: Path) -> list[Event]:
    """The events of the log at ``path``; every refusal is an ``AdminError`` naming it."""
    data = read_bounded_file(path)
    try:
        return parse_event_log(data)
    except EventLogError as exc:
        raise AdminError(f"event log {_shown(path)} is malformed: {exc}") from None


def read_bounded_file(path: Path, limit: int = MAX_LOG_BYTES, what: str = "event log") -> bytes:
    """The bytes of ``path`` (at most ``limit``); every refusal is an ``AdminError`` naming it."""
    shown = _shown(path)
    try:
        with path.open("rb") as stream:
            info = os.fstat(stream.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > limit:
                raise AdminError(f"{what} {shown} has {info.st_size} bytes,"
                                 f" more than the {limit} allowed")
            # securityfs logs and pipes report no size: read one byte past the limit
            data = stream.read(limit + 1)
    except FileNotFoundError:
        raise AdminError(f"{what} {shown} does not exist") from None
    except IsADirectoryError:
        raise AdminError(f"{what} {shown} is a directory, not a file") from None
    except OSError as exc:
        raise AdminError(f"cannot read {what} {shown}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise AdminError(f"{what} {shown} has more than the {limit} bytes allowed")
    return data


def events_to_json(events: Sequence[Event]) -> list[dict[str, object]]:
    """One object per event: index, pcr, type (EV_* name), digests (bank -> hex), data_size."""
    return [
        {
            "index": event.index,
            "pcr": event.pcr,
            "type": event.type_name,
            "digests": {bank: digest.hex() for bank, digest in event.digests.items()},
            "data_size": len(event.data),
        }
        for event in events
    ]


def pcrs_to_json(values: PcrValues) -> dict[str, dict[str, str]]:
    """bank -> PCR index (a decimal string, in numeric order) -> value in lower-case hex."""
    return {bank: {str(pcr): pcrs[pcr].hex() for pcr in sorted(pcrs)}
            for bank, pcrs in values.items()}


def format_events(events: Sequence[Event]) -> str:
    """One block per event, blocks separated by an empty line."""
    blocks: list[str] = []
    for event in events:
        width = max((len(bank) for bank in event.digests), default=0)
        lines = [f"event {event.index}: PCR {event.pcr} {event.type_name}"
                 f" ({len(event.data)} bytes of data)"]
        lines += [f"  {bank + ':':<{width + 1}} {digest.hex()}"
                  for bank, digest in event.digests.items()]
        blocks.append("\n".join(lines))
    blocks.append(f"{len(events)} events")
    return "\n\n".join(blocks)


def format_pcrs(values: PcrValues) -> str:
    """Each bank, then its PCRs as ``  N  : 0xHEX`` (the layout of tpm2_eventlog's pcrs)."""
    if not any(values.values()):
        return "the log extends no PCR"
    lines: list[str] = []
    for bank, pcrs in values.items():
        lines.append(f"{bank}:")
        lines += [f"  {pcr:<2} : 0x{pcrs[pcr].hex()}" for pcr in sorted(pcrs)]
    return "\n".join(lines)


def _shown(path: Path) -> str:
    """The path as one printable line: control characters (a hostile name) are escaped."""
    text = str(path)
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
