"""`vbios host list` and `vbios domain take`: the hosts sharing the home's store, and the
delegate hosts (`vbios host add|revoke|remove`, ``cli.delegates``).

    vbios host list [--json]             # every host: its kind, domains, and details
    vbios domain take NAME [--force]     # this host runs the domain's machine from now on

Every home is one host of its store (`vbios init --host-name`, default the machine's
name); a domain's machine runs on the host that created it until another takes it.
A delegate host is another installation holding a certificate of this one, which may
speak for the domains granted to it (``docs/remote.md``). `host list` shows both: KIND
``store`` (DOMAINS: how many machines it runs) and ``delegate`` (DOMAINS: those it may
speak for).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bios_ws.cli.delegates import delegate_detail, delegate_rows, register_delegates
from bios_ws.cli.options import add_home
from bios_ws.cli.output import print_json, rfc3339, rfc3339_or_none
from bios_ws.domain.principal import Principal

if TYPE_CHECKING:
    from bios_ws.bootstrap import App
    from bios_ws.cli.domain_machine import Action

__all__ = ["register", "register_take"]
#: What `vbios host list` calls a home sharing this store.
STORE = "store"
ADMIN = Principal.admin()
Subparsers = argparse._SubParsersAction


def register(commands: Subparsers[argparse.ArgumentParser]) -> None:
    host = commands.add_parser("host", help="the hosts sharing this home's state store, and"
                                            " delegate hosts speaking for its domains")
    sub = host.add_subparsers(dest="host_command", required=True, metavar="COMMAND")
    listing = sub.add_parser("list", help="every host of the store and how many domains each"
                                          " runs; every delegate host and its domains")
    add_home(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=run_list)
    register_delegates(sub)


def register_take(sub: Subparsers[argparse.ArgumentParser], named: argparse.ArgumentParser,
                  run_app: Callable[[argparse.Namespace, Action], int]) -> None:
    take = sub.add_parser("take", parents=[named],
                          help="run the domain's machine on this host from now on (its guest"
                               " then enrolls here)")
    take.add_argument("--force", action="store_true",
                      help="take it although its host recorded it running (that host is down)")
    take.set_defaults(run=lambda args: run_app(args, _take))


def run_list(args: argparse.Namespace) -> int:
    from bios_ws.bootstrap import bootstrap
    from bios_ws.cli.options import config_from_args
    from bios_ws.home import Home, resolve_home_path
    from bios_ws.service.delegates import DelegateService
    from bios_ws.service.hosts import HostService

    home = Home.open(resolve_home_path(args.home))
    with bootstrap(config_from_args(args, home)) as app:
        hosts = app.use(HostService).list(ADMIN)
        delegates = app.use(DelegateService).list(ADMIN)
    here = home.host_name
    rows = [{"host": h.entry.name, "kind": STORE, "this_home": h.entry.name == here,
             "domains": h.domains, "granted": None, "tpm": h.entry.tpm,
             "ca_sha256": h.entry.ca_fingerprint,
             "registered_at": rfc3339(h.entry.registered_at),
             "started_at": rfc3339_or_none(h.entry.started_at), "certificate": None,
             "status": None, "not_after": None} for h in hosts]
    rows += delegate_rows(delegates)
    if args.json:
        print_json(rows)
        return 0
    if not hosts:
        print("no hosts registered (a store from before hosts: `vbios serve` registers this"
              " one)")
        if not rows:
            return 0
    shown = [(f"{row['host']} *" if row["this_home"] else str(row["host"]), str(row["kind"]),
              _domains(row), _detail(row)) for row in rows]
    widths = [max(len(title), *(len(line[i]) for line in shown))
              for i, title in enumerate(("HOST", "KIND", "DOMAINS"))]
    print(f"{'HOST':<{widths[0]}}  {'KIND':<{widths[1]}}  {'DOMAINS':>{widths[2]}}  DETAIL")
    for name, kind, domains, detail in shown:
        print(f"{name:<{widths[0]}}  {kind:<{widths[1]}}  {domains:>{widths[2]}}  {detail}")
    if hosts:
        print("(* this home)")
    return 0


def _domains(row: dict[str, Any]) -> str:
    granted = row["granted"]
    return str(row["domains"]) if granted is None else (",".join(granted) or "-")


def _detail(row: dict[str, Any]) -> str:
    if row["kind"] != STORE:
        return delegate_detail(row)
    return f"tpm {row['tpm']}, started {row['started_at'] or 'never'}"


def _take(app: App, args: argparse.Namespace) -> int:
    from bios_ws.service.domains import DomainService

    name = args.name
    former = app.use(DomainService).take(ADMIN, name, force=args.force)
    if former is None:
        print(f"{name} runs on this host ({app.config.host}) already")
        return 0
    print(f"{name} now runs on this host ({app.config.host}), no longer on {former}; its"
          f" guest enrolls here: vbios domain enroll {name}")
    return 0
