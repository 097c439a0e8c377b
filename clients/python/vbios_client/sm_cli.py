"""`vbios-client sm`: this guest's system-management requests.

    vbios-client sm smbios [--json]          the SMBIOS tables (types 0 to 3)
    vbios-client sm sel [--json]             the System Event Log, oldest entry first
    vbios-client sm sel-clear                empty it (one "Log cleared" entry stays)
    vbios-client sm wake [--json]            the wake alarm
    vbios-client sm wake-at TIME             power on at TIME: RFC 3339 with its offset
                                             (2027-01-31T06:30:00Z), or +N s|m|h|d from now
    vbios-client sm wake-clear               remove the wake alarm
    vbios-client sm watchdog [--json]        the OS watchdog
    vbios-client sm watchdog enable [SECONDS] | disable | pet

Exit status as for every command (1: the vBIOS refused, e.g. WatchdogNotArmed).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

from vbios_client import _sm_output as show
from vbios_client._cli_inputs import UsageError

if TYPE_CHECKING:
    from vbios_client.cli import Context

EXIT_OK = 0
_UTC = timezone.utc  # noqa: UP017 - the client distribution still supports Python 3.10
_RELATIVE = re.compile(r"^\+(\d{1,9})([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
WATCHDOG_ACTIONS = ("enable", "disable", "pet")


def register(areas: argparse._SubParsersAction[argparse.ArgumentParser],
             leaf: Sequence[argparse.ArgumentParser]) -> None:
    commands = areas.add_parser(
        "sm", help="system management: SMBIOS, event log, wake alarm, watchdog",
        allow_abbrev=False).add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=list(leaf), help=text, description=text,
                                   allow_abbrev=False)

    command("smbios", "the SMBIOS tables the firmware shows (types 0 to 3)").set_defaults(
        run=_smbios)
    command("sel", "the System Event Log, oldest entry first").set_defaults(run=_sel)
    command("sel-clear", "empty the System Event Log").set_defaults(run=_sel_clear)
    command("wake", "the wake alarm").set_defaults(run=_wake)
    wake_at = command("wake-at", "power the domain on at TIME")
    wake_at.add_argument("time", metavar="TIME",
                         help="RFC 3339 with its offset (2027-01-31T06:30:00Z), or +N"
                              " followed by s, m, h or d (from now)")
    wake_at.set_defaults(run=_wake_at)
    command("wake-clear", "remove the wake alarm").set_defaults(run=_wake_clear)
    watchdog = command("watchdog", "the OS watchdog: show, enable [SECONDS], disable, pet")
    watchdog.add_argument("action", nargs="?", choices=WATCHDOG_ACTIONS, metavar="ACTION",
                          help="enable, disable or pet (none: show it)")
    watchdog.add_argument("seconds", nargs="?", type=int, metavar="SECONDS",
                          help="with enable: the timeout (default: the one it had, or 300)")
    watchdog.set_defaults(run=_watchdog)


def wake_time(text: str, now: datetime | None = None) -> datetime:
    """TIME of ``wake-at``: an aware RFC 3339 time, or ``+N<unit>`` after ``now``."""
    relative = _RELATIVE.match(text.strip())
    if relative is not None:
        amount = int(relative.group(1)) * _UNITS[relative.group(2)]
        return (now or datetime.now(_UTC)) + timedelta(seconds=amount)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"not a time: {text!r} (give 2027-01-31T06:30:00Z or +10m)") from None
    if moment.tzinfo is None:
        raise UsageError(f"{text!r} has no offset: give Z or +HH:MM (an absolute time)")
    return moment


def _smbios(ctx: Context) -> int:
    show.smbios(ctx.out, ctx.client.get_smbios(), as_json=ctx.as_json)
    return EXIT_OK


def _sel(ctx: Context) -> int:
    show.event_log(ctx.out, ctx.client.get_system_event_log(), as_json=ctx.as_json)
    return EXIT_OK


def _sel_clear(ctx: Context) -> int:
    show.removed(ctx.out, ctx.client.clear_system_event_log(), as_json=ctx.as_json)
    return EXIT_OK


def _wake(ctx: Context) -> int:
    show.alarm(ctx.out, ctx.client.get_wake_alarm(), as_json=ctx.as_json)
    return EXIT_OK


def _wake_at(ctx: Context) -> int:
    alarm = ctx.client.set_wake_alarm(wake_time(ctx.args.time))
    show.alarm(ctx.out, alarm, as_json=ctx.as_json)
    return EXIT_OK


def _wake_clear(ctx: Context) -> int:
    show.cleared(ctx.out, ctx.client.clear_wake_alarm(), as_json=ctx.as_json)
    return EXIT_OK


def _watchdog(ctx: Context) -> int:
    action, seconds = ctx.args.action, ctx.args.seconds
    if seconds is not None and action != "enable":
        raise UsageError("SECONDS goes with enable: vbios-client sm watchdog enable 60")
    client = ctx.client
    if action is None:
        found = client.get_watchdog()
    elif action == "enable":
        found = client.set_watchdog(True, seconds)
    elif action == "disable":
        found = client.set_watchdog(False)
    else:
        found = client.pet_watchdog()
    show.watchdog(ctx.out, found, as_json=ctx.as_json)
    return EXIT_OK
