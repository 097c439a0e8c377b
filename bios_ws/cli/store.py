"""`vbios store status|upgrade`: the home's state store and its schema version.

    vbios store status [--json]     # where the store is, its schema version, what is pending
    vbios store upgrade             # run the pending migrations (bios_ws.store.migrations)

A SQLite store is upgraded when a command or the server opens it; a PostgreSQL
store, shared by a fleet, only by `vbios store upgrade` (a server refuses it until
then, and refuses any store newer than it knows). docs/store.md says more.
"""

from __future__ import annotations

import argparse

from bios_ws.cli.options import add_home
from bios_ws.cli.output import print_json
from bios_ws.home import Home, resolve_home_path

__all__ = ["register"]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    store = commands.add_parser("store", help="the state store: schema version and upgrades")
    sub = store.add_subparsers(dest="store_command", required=True, metavar="COMMAND")
    status = sub.add_parser("status", help="print the store, its schema version and the"
                                           " migrations pending")
    add_home(status)
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(run=run_status)
    upgrade = sub.add_parser("upgrade", help="run the pending migrations (one transaction)")
    add_home(upgrade)
    upgrade.set_defaults(run=run_upgrade)


def _store_of(args: argparse.Namespace) -> tuple[str, str]:
    """The home's store URL, and how to show it (never a password: none is allowed)."""
    from bios_ws.store.engine import safe_url
    from bios_ws.store.urls import check_store_url

    url = Home.open(resolve_home_path(args.home)).db_url
    return url, safe_url(check_store_url(url))


def run_status(args: argparse.Namespace) -> int:
    from bios_ws.store.sql import store_status

    url, shown = _store_of(args)
    found = store_status(url)
    pending = [] if found.too_new else [
        {"version": m.version, "summary": m.summary} for m in found.pending]
    if args.json:
        print_json({"store": shown, "schema_version": found.found,
                    "known_version": found.known, "pending": pending,
                    "too_new": found.too_new})
        return 0
    print(f"store:          {shown}")
    print(f"schema version: {'none (a new store)' if found.found is None else found.found}"
          f" (this vbios: {found.known})")
    if found.too_new:
        print("newer than this vbios understands: upgrade vbios")
    elif not pending:
        print("up to date")
    else:
        for step in pending:
            print(f"  pending {step['version']}: {step['summary']}")
        print("run: vbios store upgrade")
    return 0


def run_upgrade(args: argparse.Namespace) -> int:
    from bios_ws.store.sql import open_store, store_status

    url, shown = _store_of(args)
    before = store_status(url)
    open_store(url, upgrade=True).dispose()  # refuses a newer store
    if not before.pending:
        print(f"{shown}: schema version {before.known}, up to date")
        return 0
    for step in before.pending:
        print(f"  {step.version}: {step.summary}")
    was = "none" if before.found is None else str(before.found)
    print(f"{shown}: schema version {was} -> {before.known}")
    return 0
