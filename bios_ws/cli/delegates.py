"""`vbios host add|revoke|remove`: delegate hosts, other installations that may speak
for chosen domains of this one (``docs/remote.md``).

    vbios host add H --domains D1,D2 --out BUNDLE   # H's certificate; H may speak for D1, D2
    vbios host revoke H [--reason R]                # H's certificates revoked (the CRL follows)
    vbios host remove H                             # revoked, and H may speak for nothing

H gives the bundle to its own installation (`vbios remote add NAME URL --bundle
BUNDLE` there), which forwards its guests' calls here with the header
``X-Vbios-On-Behalf-Of: D``. `vbios host list` shows delegate hosts beside the hosts
sharing the store.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bios_ws.cli.options import add_home
from bios_ws.cli.output import print_json, rfc3339, rfc3339_or_none
from bios_ws.domain.credentials import CertificateRecord, CertificateStatus, RevocationReason
from bios_ws.domain.principal import Principal

if TYPE_CHECKING:
    from bios_ws.service.delegates import Delegate, DelegateService

__all__ = ["delegate_rows", "register_delegates"]
ADMIN = Principal.admin()
Subparsers = argparse._SubParsersAction
#: What `vbios host list` calls a host that holds a certificate of this installation to
#: speak for some of its domains (rather than sharing its store): B delegates to it.
DELEGATE = "delegate"
_REASONS = [r.value for r in RevocationReason]


def register_delegates(sub: Subparsers[argparse.ArgumentParser]) -> None:
    add = sub.add_parser("add", help="a certificate for another installation's host, which may"
                                     " then speak for the domains named")
    add_home(add)
    add.add_argument("name", metavar="HOST", help="the host's name (as `vbios init"
                                                   " --host-name` names it there)")
    add.add_argument("--domains", metavar="D1,D2", required=True,
                     help="the domains of this installation the host may speak for")
    add.add_argument("--out", metavar="BUNDLE", required=True, help="new bundle directory")
    add.add_argument("--json", action="store_true", help="print JSON")
    add.set_defaults(run=run_add)

    revoke = sub.add_parser("revoke", help="revoke every certificate of a delegate host (its"
                                           " domains stay granted for a new one)")
    add_home(revoke)
    revoke.add_argument("name", metavar="HOST")
    revoke.add_argument("--reason", choices=_REASONS,
                        default=RevocationReason.UNSPECIFIED.value,
                        help="recorded reason (default %(default)s)")
    revoke.add_argument("--json", action="store_true", help="print JSON")
    revoke.set_defaults(run=run_revoke)

    remove = sub.add_parser("remove", help="revoke a delegate host's certificates and drop"
                                           " its domains")
    add_home(remove)
    remove.add_argument("name", metavar="HOST")
    remove.add_argument("--json", action="store_true", help="print JSON")
    remove.set_defaults(run=run_remove)


@contextmanager
def _delegates(args: argparse.Namespace) -> Iterator[DelegateService]:
    from bios_ws.bootstrap import bootstrap
    from bios_ws.cli.options import config_from_args
    from bios_ws.home import Home, resolve_home_path
    from bios_ws.service.delegates import DelegateService

    home = Home.open(resolve_home_path(args.home))
    with bootstrap(config_from_args(args, home)) as app:
        yield app.use(DelegateService)


def run_add(args: argparse.Namespace) -> int:
    from bios_ws.pki import check_bundle_dir, write_bundle_files

    domains = [d.strip() for d in args.domains.split(",") if d.strip()]
    out = Path(args.out).expanduser()
    check_bundle_dir(out)
    with _delegates(args) as delegates:
        bundle = delegates.add(ADMIN, args.name, domains)
        write_bundle_files(out, bundle.cert_pem, bundle.key_pem, bundle.ca_pem)
    shown = sorted(set(domains))
    if args.json:
        print_json({"host": args.name, "domains": shown, "serial": bundle.record.serial_hex,
                    "not_after": rfc3339(bundle.record.not_after), "bundle": str(out)})
        return 0
    print(f"issued host certificate {bundle.record.serial_hex} to {args.name}, which may"
          f" speak for {', '.join(shown)}: {out}")
    print(f"on {args.name}: vbios remote add NAME URL --bundle DIR (a copy of {out})")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    with _delegates(args) as delegates:
        revoked = delegates.revoke(ADMIN, args.name, RevocationReason(args.reason))
    return _print_revoked(args, revoked, removed=False)


def run_remove(args: argparse.Namespace) -> int:
    with _delegates(args) as delegates:
        revoked = delegates.remove(ADMIN, args.name)
    return _print_revoked(args, revoked, removed=True)


def _print_revoked(args: argparse.Namespace, revoked: list[CertificateRecord], *,
                   removed: bool) -> int:
    if args.json:
        print_json({"host": args.name, "revoked": [r.serial_hex for r in revoked],
                    "removed": removed})
        return 0
    for record in revoked:
        print(f"revoked {record.serial_hex} (host {args.name})")
    if revoked:
        print("the CRL is published: new connections with these certificates are refused")
    elif not removed:
        print("nothing to revoke: already revoked")
    if removed:
        print(f"{args.name} may speak for no domain any more")
    return 0


def delegate_rows(delegates: list[Delegate], now: datetime | None = None
                  ) -> list[dict[str, Any]]:
    """`vbios host list`'s rows of the delegate hosts (the keys of the store hosts' rows,
    those that do not apply None, and the delegate's own)."""
    now = now or datetime.now(UTC)
    rows = []
    for delegate in delegates:
        latest = delegate.certificates[-1] if delegate.certificates else None
        rows.append({
            "host": delegate.name, "kind": DELEGATE, "this_home": False,
            "domains": len(delegate.domains), "granted": list(delegate.domains),
            "tpm": None, "ca_sha256": None,
            "registered_at": rfc3339_or_none(delegate.certificates[0].issued_at
                                             if delegate.certificates else None),
            "started_at": None,
            "certificate": None if latest is None else latest.serial_hex,
            "status": None if latest is None else latest.status_at(now).value,
            "not_after": None if latest is None else rfc3339(latest.not_after),
        })
    return rows


def delegate_detail(row: dict[str, Any]) -> str:
    """The DETAIL column of a delegate host's row."""
    if row["certificate"] is None:
        return "no certificate"
    if row["status"] == CertificateStatus.ACTIVE.value:
        return f"certificate {row['certificate']} active until {row['not_after']}"
    return f"certificate {row['certificate']} {row['status']}"
