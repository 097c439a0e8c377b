"""`vbios domain sm NAME ...`: a domain's system-management requests, for the host admin,
in-process on the home's store and machines (a server need not run), through the same
``SystemManagementService.handle`` the SOAP operations reach:

    vbios domain sm NAME smbios [--json]
    vbios domain sm NAME sel [--json]
    vbios domain sm NAME sel-clear
    vbios domain sm NAME sel-policy MAX [--overwrite WrapsWhenFull|NeverOverWrites]
    vbios domain sm NAME wake [--json]
    vbios domain sm NAME wake-at TIME          (RFC 3339 with its offset, or +N s|m|h|d)
    vbios domain sm NAME wake-clear
    vbios domain sm NAME watchdog [enable [SECONDS] | disable] [--json]

Alarms and watchdogs are fired by the serving workers (``vbios serve``).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bios_ws.cli.output import json_text, rfc3339_or_none
from bios_ws.domain import sm_requests as sm
from bios_ws.domain.principal import Principal, check_domain_id
from bios_ws.domain.sel import OverWritePolicy
from bios_ws.errors import AdminError

if TYPE_CHECKING:  # imported where used: `vbios --help` loads no database or SOAP
    from bios_ws.bootstrap import App
    from bios_ws.domain.sel import SelLog
    from bios_ws.domain.smbios import SmbiosTables
    from bios_ws.domain.timers import WakeAlarm
    from bios_ws.service.system_management import EventLogView, WatchdogView

Subparsers = argparse._SubParsersAction
Action = Callable[["App", argparse.Namespace], int]
ADMIN = Principal.admin()
_RELATIVE = re.compile(r"^\+(\d{1,9})([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def register(sub: Subparsers[argparse.ArgumentParser], common: argparse.ArgumentParser,
             run_app: Callable[[argparse.Namespace, Action], int]) -> None:
    """Add ``sm`` to ``vbios domain`` (NAME before the command, as ``firmware``)."""
    as_json = argparse.ArgumentParser(add_help=False, parents=[common])
    as_json.add_argument("--json", action="store_true", help="print JSON")
    parser = sub.add_parser("sm", help="a domain's SMBIOS, event log, wake alarm, watchdog",
                            description="A domain's system-management requests, as the"
                                        " admin: SMBIOS tables, System Event Log, wake"
                                        " alarm and OS watchdog.")
    parser.add_argument("name", metavar="NAME", help="the domain")
    commands = parser.add_subparsers(dest="sm_command", required=True, metavar="COMMAND")

    def command(name: str, text: str, action: Action) -> argparse.ArgumentParser:
        found = commands.add_parser(name, parents=[as_json], help=text, description=text)
        found.set_defaults(run=lambda args: run_app(args, action))
        return found

    command("smbios", "the SMBIOS tables its firmware shows (types 0 to 3)", _smbios)
    command("sel", "its System Event Log, oldest entry first", _sel)
    command("sel-clear", "empty its System Event Log (one \"Log cleared\" entry stays)",
            _sel_clear)
    policy = command("sel-policy", "the log's capacity and what a full log does",
                     _sel_policy)
    policy.add_argument("max_entries", metavar="MAX", type=int, help="entries kept (16-4096)")
    policy.add_argument("--overwrite", choices=[p.value for p in OverWritePolicy],
                        default=OverWritePolicy.WRAPS_WHEN_FULL.value,
                        help="drop the oldest (default) or refuse new entries when full")
    command("wake", "its wake alarm", _wake)
    wake_at = command("wake-at", "power it on at TIME (LastResetCause RTCWakeup)", _wake_at)
    wake_at.add_argument("time", metavar="TIME",
                         help="RFC 3339 with its offset, or +N followed by s, m, h or d")
    command("wake-clear", "remove its wake alarm", _wake_clear)
    watchdog = command("watchdog", "its OS watchdog: show, enable [SECONDS], disable",
                       _watchdog)
    watchdog.add_argument("action", nargs="?", choices=("enable", "disable"),
                          metavar="ACTION", help="enable or disable (none: show it)")
    watchdog.add_argument("seconds", nargs="?", type=int, metavar="SECONDS",
                          help="with enable: the timeout (default: the one it had, or 300)")


def wake_time(text: str, now: datetime | None = None) -> datetime:
    """An aware RFC 3339 time, or ``+N<unit>`` after ``now``; AdminError otherwise."""
    relative = _RELATIVE.match(text.strip())
    if relative is not None:
        seconds = int(relative.group(1)) * _UNITS[relative.group(2)]
        return (now or datetime.now(UTC)) + timedelta(seconds=seconds)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise AdminError(f"not a time: {text!r} (give 2027-01-31T06:30:00Z or +10m)") from None
    if moment.tzinfo is None:
        raise AdminError(f"{text!r} has no offset: give Z or +HH:MM (an absolute time)")
    return moment


def _handle(app: App, request: sm.SmRequest) -> Any:
    from bios_ws.service.system_management import SystemManagementService

    return app.use(SystemManagementService).handle(ADMIN, request)


def _print(args: argparse.Namespace, data: Any, text: str) -> int:
    print(json_text(data) if args.json else text)
    return 0


def _smbios(app: App, args: argparse.Namespace) -> int:
    tables: SmbiosTables = _handle(app, sm.GetSmbios(domain_id=check_domain_id(args.name)))
    data = smbios_json(tables)
    lines = [f"{part:<10} {key:<14} {value}" for part, fields in data.items()
             for key, value in fields.items()]
    return _print(args, data, "\n".join(lines))


def _sel(app: App, args: argparse.Namespace) -> int:
    view: EventLogView = _handle(app, sm.GetEventLog(domain_id=check_domain_id(args.name)))
    data = {**log_json(view.log), "entries": [entry_json(e) for e in view.entries]}
    lines = [f"# {len(view.entries)} of {view.log.policy.max_entries} entries"
             f" ({view.log.policy.overwrite.value}, {view.log.dropped} refused while full)"]
    lines += [f"{e.entry_id:>6}  {rfc3339_or_none(e.created)}  {e.severity.value:<8}"
              f"  {e.sensor_type}: {e.message}" for e in view.entries]
    return _print(args, data, "\n".join(lines))


def _sel_clear(app: App, args: argparse.Namespace) -> int:
    removed = _handle(app, sm.ClearEventLog(domain_id=check_domain_id(args.name)))
    return _print(args, {"removed": removed}, f"{removed} entries removed")


def _sel_policy(app: App, args: argparse.Namespace) -> int:
    log: SelLog = _handle(app, sm.SetEventLogPolicy(
        domain_id=check_domain_id(args.name), max_entries=args.max_entries,
        overwrite=OverWritePolicy(args.overwrite)))
    return _print(args, log_json(log), f"the log keeps {log.policy.max_entries} entries"
                                       f" ({log.policy.overwrite.value}); it holds"
                                       f" {log.entries}")


def _wake(app: App, args: argparse.Namespace) -> int:
    alarm = _handle(app, sm.GetWakeAlarm(domain_id=check_domain_id(args.name)))
    return _alarm(args, alarm)


def _wake_at(app: App, args: argparse.Namespace) -> int:
    request = sm.SetWakeAlarm(domain_id=check_domain_id(args.name),
                              wake_at=wake_time(args.time))
    return _alarm(args, _handle(app, request))


def _alarm(args: argparse.Namespace, alarm: WakeAlarm | None) -> int:
    if alarm is None:
        return _print(args, None, "no wake alarm")
    data = {"wake_time": rfc3339_or_none(alarm.wake_at), "set_by": alarm.set_by,
            "set_at": rfc3339_or_none(alarm.set_at)}
    return _print(args, data, f"wake alarm at {data['wake_time']} (set by {alarm.set_by})")


def _wake_clear(app: App, args: argparse.Namespace) -> int:
    cleared = _handle(app, sm.ClearWakeAlarm(domain_id=check_domain_id(args.name)))
    return _print(args, {"cleared": cleared},
                  "wake alarm cleared" if cleared else "there was no wake alarm")


def _watchdog(app: App, args: argparse.Namespace) -> int:
    name = check_domain_id(args.name)
    if args.seconds is not None and args.action != "enable":
        raise AdminError("SECONDS goes with enable: vbios domain sm NAME watchdog enable 60")
    request: sm.SmRequest = (sm.GetWatchdog(domain_id=name) if args.action is None else
                             sm.SetWatchdog(domain_id=name, enabled=args.action == "enable",
                                            timeout_seconds=args.seconds))
    view: WatchdogView = _handle(app, request)
    data = {"enabled": view.enabled, "timeout_seconds": view.timeout_seconds,
            "last_pet": rfc3339_or_none(view.last_pet), "deadline": rfc3339_or_none(view.deadline),
            "expirations": view.expirations}
    state = "armed" if view.enabled else "disarmed"
    return _print(args, data, f"watchdog {state}, timeout {view.timeout_seconds} s, resets at"
                              f" {data['deadline'] or '-'}, bit {view.expirations} times")


def smbios_json(tables: SmbiosTables) -> dict[str, dict[str, str]]:
    bios, system = tables.bios, tables.system
    return {
        "bios": {"vendor": bios.vendor, "version": bios.version,
                 "release_date": bios.release_date_text},
        "system": {"manufacturer": system.manufacturer, "product_name": system.product_name,
                   "serial_number": system.serial_number, "uuid": str(system.uuid),
                   "sku_number": system.sku_number, "family": system.family},
        "baseboard": {"manufacturer": tables.baseboard.manufacturer,
                      "product_name": tables.baseboard.product_name,
                      "serial_number": tables.baseboard.serial_number,
                      "asset_tag": tables.baseboard.asset_tag},
        "chassis": {"manufacturer": tables.chassis.manufacturer,
                    "serial_number": tables.chassis.serial_number,
                    "asset_tag": tables.chassis.asset_tag},
    }


def log_json(log: SelLog) -> dict[str, Any]:
    return {"max_entries": log.policy.max_entries, "overwrite_policy":
            log.policy.overwrite.value, "entry_count": log.entries, "dropped": log.dropped}


def entry_json(entry: Any) -> dict[str, Any]:
    return {"id": entry.entry_id, "created": rfc3339_or_none(entry.created),
            "severity": entry.severity.value, "message": entry.message,
            "message_id": entry.message_id, "message_args": list(entry.message_args),
            "sensor_type": entry.sensor_type, "entry_code": entry.entry_code}
