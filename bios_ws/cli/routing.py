"""`vbios remote` and `vbios route`: which installation serves each guest capability.

    vbios remote add NAME URL --bundle DIR   # a remote vBIOS, with this host's credential there
    vbios remote list [--json]
    vbios remote remove NAME                 # refused while a route uses it
    vbios route set CAPABILITY local|REMOTE [--domain NAME] [--cache SECONDS]
    vbios route show [--json]

The bundle is the one the remote's admin made for this host (`vbios host add HOST
--domains D1,D2 --out DIR` there): cert.pem, key.pem, ca.pem. Its key is kept in the
home encrypted under the server key's passphrase (docs/routing.md); delete the bundle
afterwards. A route applies to the next guest call of a running server. ``--cache``:
while the remote is unavailable, its answers to reads at most SECONDS old are served
from the serving worker's memory, marked as cached (absent: never).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from bios_ws.cli.options import add_home
from bios_ws.cli.output import print_json
from bios_ws.domain.principal import Principal

if TYPE_CHECKING:
    from collections.abc import Callable

    from bios_ws.bootstrap import App
    from bios_ws.home import Home

    _Action = Callable[[App, Home, argparse.Namespace], int]
    _Run = Callable[[argparse.Namespace], int]

__all__ = ["register"]
ADMIN = Principal.admin()
Subparsers = argparse._SubParsersAction


def register(commands: Subparsers[argparse.ArgumentParser]) -> None:
    remote = commands.add_parser("remote", help="remote vBIOS installations guests' calls"
                                                " may be routed to")
    sub = remote.add_subparsers(dest="remote_command", required=True, metavar="COMMAND")
    add = sub.add_parser("add", help="add a remote with this host's credential there")
    add_home(add)
    add.add_argument("name", help="the remote's name here (a-z 0-9 . -)")
    add.add_argument("url", help="the remote's https:// endpoint")
    add.add_argument("--bundle", required=True, type=Path,
                     help="the host bundle its admin issued (vbios host add there)")
    add.set_defaults(run=_with_app(_remote_add))
    listing = sub.add_parser("list", help="the remotes")
    add_home(listing)
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=_with_app(_remote_list))
    remove = sub.add_parser("remove", help="forget a remote (no route may use it)")
    add_home(remove)
    remove.add_argument("name")
    remove.set_defaults(run=_with_app(_remote_remove))

    route = commands.add_parser("route", help="which installation serves each guest"
                                              " capability")
    sub = route.add_subparsers(dest="route_command", required=True, metavar="COMMAND")
    # the routable capabilities come from the registry: `route show --json` and a refusal
    # list them (parsing
    # the command line loads no heavy library)
    put = sub.add_parser("set", help="serve a capability here (local) or by a remote")
    add_home(put)
    put.add_argument("capability", help="a routable capability ('-' for a space)")
    put.add_argument("target", help="local, or a remote's name")
    put.add_argument("--domain", help="for this domain only (default: every domain)")
    put.add_argument("--cache", type=_seconds, metavar="SECONDS",
                     help="while the remote is unavailable, answer reads from its answers"
                          " at most SECONDS old (marked as cached; default: never)")
    put.set_defaults(run=_with_app(_route_set))
    show = sub.add_parser("show", help="the routes (every capability not shown is local)")
    add_home(show)
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(run=_with_app(_route_show))


def _seconds(text: str) -> int:
    """A whole number of seconds (the range is checked with the route)."""
    try:
        return int(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of seconds"
                                         ) from None


def _with_app(action: _Action) -> _Run:
    def run(args: argparse.Namespace) -> int:
        from bios_ws.bootstrap import bootstrap
        from bios_ws.cli.options import config_from_args
        from bios_ws.home import Home, resolve_home_path

        home = Home.open(resolve_home_path(args.home))
        with bootstrap(config_from_args(args, home)) as app:
            return action(app, home, args)

    return run


def _remote_add(app: App, home: Home, args: argparse.Namespace) -> int:
    from bios_ws.domain.routing import Remote, check_remote_name, check_remote_url
    from bios_ws.errors import AdminError
    from bios_ws.pki.remote_credentials import keep_key, key_path, read_bundle
    from bios_ws.service.routing import RoutingService

    name, url = check_remote_name(args.name), check_remote_url(args.url)
    bundle = read_bundle(args.bundle)
    if bundle.host != app.config.host:
        raise AdminError(f"{args.bundle} is a credential of host {bundle.host}, and this"
                         f" home is host {app.config.host}: ask the remote's admin for one"
                         f" of {app.config.host}")
    kept = key_path(home.pki_dir, name)
    if kept.exists():
        raise AdminError(f"remote {name} exists already (vbios remote remove {name} first)")
    keep_key(kept, bundle.key, home.key_passphrase("server"))
    try:
        app.use(RoutingService).add_remote(ADMIN, Remote(name, url, bundle.cert_pem,
                                                         bundle.ca_pem))
    except BaseException:
        kept.unlink(missing_ok=True)
        raise
    print(f"remote {name} added ({url}); its key is kept encrypted in {kept}: delete"
          f" {args.bundle}")
    return 0


def _remote_list(app: App, home: Home, args: argparse.Namespace) -> int:
    from bios_ws.pki.certinfo import describe, pem_certificate_der
    from bios_ws.service.routing import RoutingService

    view = app.use(RoutingService).view(ADMIN)
    rows = []
    for remote in view.remotes:
        info = describe(pem_certificate_der(remote.cert_pem.decode("ascii")))
        rows.append({"name": remote.name, "url": remote.url,
                     "certificate_expires": info.not_after.isoformat(),
                     "routes": sum(r.target == remote.name for r in view.routes)})
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no remotes (vbios remote add NAME URL --bundle DIR)")
        return 0
    for row in rows:
        print(f"{row['name']}  {row['url']}  routes: {row['routes']}"
              f"  credential until {row['certificate_expires']}")
    return 0


def _remote_remove(app: App, home: Home, args: argparse.Namespace) -> int:
    from bios_ws.pki.remote_credentials import key_path
    from bios_ws.service.routing import RoutingService

    app.use(RoutingService).remove_remote(ADMIN, args.name)
    key_path(home.pki_dir, args.name).unlink(missing_ok=True)
    print(f"remote {args.name} removed, and this host's key there")
    return 0


def _route_set(app: App, home: Home, args: argparse.Namespace) -> int:
    from bios_ws.service.routing import RoutingService

    route = app.use(RoutingService).set_route(ADMIN, args.capability, args.target,
                                              domain=args.domain, cache_seconds=args.cache)
    whom = "every domain" if args.domain is None else args.domain
    name = args.capability.strip().lower().replace("-", " ")
    if route is None:
        print(f"{name} of {whom}: served here")
    elif route.cache_seconds is None:
        print(f"{name} of {whom}: served by remote {route.target}")
    else:
        print(f"{name} of {whom}: served by remote {route.target}; while it is unavailable,"
              f" reads from its answers at most {route.cache_seconds} s old (marked cached)")
    return 0


def _route_show(app: App, home: Home, args: argparse.Namespace) -> int:
    from bios_ws.capabilities import routable_capabilities
    from bios_ws.service.routing import RoutingService

    view = app.use(RoutingService).view(ADMIN)
    routes = [{"capability": r.capability, "domain": r.domain, "target": r.target,
               "cache_seconds": r.cache_seconds} for r in view.routes]
    if args.json:
        print_json({"routes": routes, "routable": list(routable_capabilities())})
        return 0
    if not routes:
        print("every capability is served here (no route)")
        return 0
    width = max(len("CAPABILITY"), *(len(r.capability) for r in view.routes))
    print(f"{'CAPABILITY':<{width}}  {'DOMAIN':<20}  {'TARGET':<20}  CACHE")
    for r in view.routes:
        cache = "-" if r.cache_seconds is None else f"{r.cache_seconds}s"
        print(f"{r.capability:<{width}}  {r.domain or '(all)':<20}  {r.target:<20}  {cache}")
    print("(any other capability or domain: local; CACHE: how old an answer may be served"
          " while the remote is unavailable, - never)")
    return 0
