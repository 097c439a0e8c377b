"""`vbios host list` and `vbios domain take`: the hosts sharing the home's store.

    vbios host list [--json]             # every host: its TPM, domains, registration, start
    vbios domain take NAME [--force]     # this host runs the domain's machine from now on

Every home is one host of its store (`vbios init --host-name`, default the machine's
name); a domain's machine runs on the host that created it until another takes it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from bios_ws.cli.options import add_home
from bios_ws.cli.output import print_json, rfc3339, rfc3339_or_none
from bios_ws.domain.principal import Principal

if TYPE_CHECKING:
    from bios_ws.bootstrap import App
    from bios_ws.cli.domain_machine import Action

__all__ = ["register", "register_take"]
ADMIN = Principal.admin()
Subparsers = argparse._SubParsersAction


def register(commands: Subparsers[argparse.ArgumentParser]) -> None:
    host = commands.add_parser("host", help="the hosts sharing this home's state store")
    sub = host.add_subparsers(dest="host_command", required=True, metavar="COMMAND")
    listing = sub.add_parser("list", help="every host of the store, and how many domains"
                                          " each runs")
    add_home(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=run_list)


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
    from bios_ws.service.hosts import HostService

    home = Home.open(resolve_home_path(args.home))
    with bootstrap(config_from_args(args, home)) as app:
        hosts = app.use(HostService).list(ADMIN)
    here = home.host_name
    rows = [{"host": h.entry.name, "this_home": h.entry.name == here, "domains": h.domains,
             "tpm": h.entry.tpm, "ca_sha256": h.entry.ca_fingerprint,
             "registered_at": rfc3339(h.entry.registered_at),
             "started_at": rfc3339_or_none(h.entry.started_at)} for h in hosts]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no hosts registered (a store from before hosts: `vbios serve` registers this"
              " one)")
        return 0
    width = max(len("HOST"), *(len(str(row["host"])) + 2 for row in rows))
    print(f"{'HOST':<{width}}  {'DOMAINS':>7}  {'TPM':<6}  STARTED")
    for row in rows:
        name = f"{row['host']} *" if row["this_home"] else str(row["host"])
        print(f"{name:<{width}}  {row['domains']:>7}  {str(row['tpm'])[:6]:<6}"
              f"  {row['started_at'] or 'never'}")
    print("(* this home)")
    return 0


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
