"""`vbios-client events`: this guest's events as they come.

    vbios-client events watch [--types T,...] [--cursor ID] [--count N] [--wait S] [--json]

``watch`` subscribes (to the domain's events of the types named, and the host-wide
ones) and prints each event on one line as it comes, until interrupted or, with
``--count``, after N events: the time (RFC 3339, UTC), severity, type, domain (``host``
for a host-wide event), message and id; with ``--json`` one JSON object per line in
Redfish's field names. ``--cursor`` goes on after that event id (the last one printed).
Each call long-polls up to ``--wait`` seconds (default 30); the vBIOS renewing, forgetting
or restarting is handled by the library's iterator (``BiosClient.events``). Lines are
flushed one by one, for a pipe. Exit status as for every command.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vbios_client._cli_text import json_line, utc_text
from vbios_client.models import EVENT_TYPES, Event

if TYPE_CHECKING:
    from vbios_client.cli import Context

EXIT_OK = 0


def register(areas: argparse._SubParsersAction[argparse.ArgumentParser],
             leaf: Sequence[argparse.ArgumentParser]) -> None:
    commands = areas.add_parser("events", help="events: what changes, as it changes",
                                allow_abbrev=False).add_subparsers(
        dest="command", required=True, metavar="COMMAND")
    text = "print the domain's events as they come, one a line"
    watch = commands.add_parser("watch", parents=list(leaf), help=text, description=text,
                                allow_abbrev=False)
    watch.set_defaults(run=_watch)
    watch.add_argument("--types", type=_types, metavar="T,...",
                       help="only these event types: " + ", ".join(EVENT_TYPES))
    watch.add_argument("--cursor", type=_count(0), metavar="ID",
                       help="go on after this event id (default: events from now on)")
    watch.add_argument("--count", type=_count(1), metavar="N",
                       help="stop after N events (default: until interrupted)")
    watch.add_argument("--wait", type=_wait, default=30.0, metavar="SECONDS",
                       help="how long each call waits for an event (1-30, default 30)")


def _types(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in EVENT_TYPES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown event type {', '.join(unknown) or repr(text)}; known:"
            f" {', '.join(EVENT_TYPES)}")
    return names


def _count(least: int) -> Any:
    def parse(text: str) -> int:
        if not text.isdigit() or int(text) < least:
            raise argparse.ArgumentTypeError(f"expected a whole number of {least} or more,"
                                             f" not {text!r}")
        return int(text)
    return parse


def _wait(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 1 <= value <= 30:
        raise argparse.ArgumentTypeError(f"expected 1 to 30 seconds, not {text!r}")
    return value


def _watch(ctx: Context) -> int:
    args = ctx.args
    printed = 0
    with ctx.client.events(args.types, wait=args.wait, cursor=args.cursor) as stream:
        for event in stream:
            ctx.out.write(as_json(event) if ctx.as_json else as_text(event))
            ctx.out.write("\n")
            ctx.out.flush()
            printed += 1
            if args.count is not None and printed >= args.count:
                break
    return EXIT_OK


def _time(event: Event) -> str:
    return str(utc_text(event.timestamp))


def as_text(event: Event) -> str:
    return (f"{_time(event)} {event.severity:<8} {event.event_type} {event.domain or 'host'}:"
            f" {' '.join(event.message.split())} (#{event.event_id})")


def as_json(event: Event) -> str:
    return json_line({
        "EventId": event.event_id, "EventType": event.event_type,
        "EventTimestamp": _time(event), "Severity": event.severity,
        "Message": event.message, "MessageId": event.message_id,
        "MessageArgs": list(event.message_args), "OriginOfCondition": event.origin,
        "Domain": event.domain})
