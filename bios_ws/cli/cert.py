"""`vbios cert list|issue|revoke` and `vbios admin rotate`: client credentials.

Every certificate the CA issues to a client is recorded; revoking one (or all
of a domain's) publishes a new CRL at once, so the server refuses it at the
next TLS handshake, and closes the connections it kept alive.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bios_ws.cli.options import add_guest_cert_option, add_home, config_from_args
from bios_ws.cli.output import print_json, rfc3339, rfc3339_or_none
from bios_ws.domain.credentials import CertificateRecord, RevocationReason, parse_serial
from bios_ws.domain.principal import Principal, Role, check_domain_id
from bios_ws.errors import AdminError
from bios_ws.home import Home, resolve_home_path

if TYPE_CHECKING:  # imported where used: `vbios --help` loads no crypto, database or SOAP
    from bios_ws.bootstrap import App
    from bios_ws.service.credentials import ClientBundle, CredentialService

ADMIN = Principal.admin()
DEFAULT_SERVER_URL = "https://127.0.0.1:8443/"
_REASONS = [r.value for r in RevocationReason]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    cert = commands.add_parser("cert", help="client certificates: list, issue, revoke")
    sub = cert.add_subparsers(dest="cert_command", required=True, metavar="COMMAND")

    listing = sub.add_parser("list", help="every client certificate issued, with its status")
    add_home(listing)
    listing.add_argument("--domain", metavar="NAME", help="only the certificates of NAME")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=run_list)

    issue = sub.add_parser("issue", help="a new client bundle for a domain (its current"
                                         " incarnation); former ones stay valid")
    add_home(issue)
    issue.add_argument("--domain", metavar="NAME", required=True)
    issue.add_argument("--out", metavar="BUNDLE", required=True, help="new bundle directory")
    add_guest_cert_option(issue)
    issue.set_defaults(run=run_issue)

    revoke = sub.add_parser("revoke", help="revoke a certificate, or every one of a domain")
    add_home(revoke)
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("serial", nargs="?", metavar="SERIAL", help="serial (hex, as listed)")
    which.add_argument("--domain", metavar="NAME", help="every certificate of domain NAME")
    which.add_argument("--admin", metavar="SERIAL", help="an admin certificate, by serial")
    revoke.add_argument("--reason", choices=_REASONS, default=RevocationReason.UNSPECIFIED.value,
                        help="recorded reason (default %(default)s)")
    revoke.set_defaults(run=run_revoke)


def add_enroll_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default=DEFAULT_SERVER_URL, metavar="URL",
                        help="the server's address the guest will reach (default %(default)s)")
    parser.add_argument("--minutes", type=int, default=10, metavar="N",
                        help="how long the bootstrap URI is valid, 1-10 (default %(default)s)")


def bootstrap_uri(app: App, domain_id: str, args: argparse.Namespace) -> str:
    """A new one-time bootstrap URI for ``domain_id`` (printed by the caller)."""
    from bios_ws.service.enrollment import EnrollmentService

    if not 1 <= args.minutes <= 10:
        raise AdminError("--minutes must be between 1 and 10")
    _, uri = app.use(EnrollmentService).ticket(ADMIN, domain_id, args.url,
                                                timedelta(minutes=args.minutes))
    return uri


def run_enroll(args: argparse.Namespace) -> int:
    domain = check_domain_id(args.name)
    with _credentials(args) as (app, _):
        uri = bootstrap_uri(app, domain, args)
    print_bootstrap_uri(domain, uri, args.minutes)
    return 0


def print_bootstrap_uri(domain: str, uri: str, minutes: int) -> None:
    print(f"bootstrap URI for {domain} (one use, valid {minutes} minutes):")
    print(f"  {uri}")
    print(f"in the guest: vbios-client enroll '{uri}' --out BUNDLE")


def register_admin(admin_commands: argparse._SubParsersAction[argparse.ArgumentParser]
                   ) -> None:
    rotate = admin_commands.add_parser(
        "rotate", help="a new admin bundle; every admin certificate before it is revoked")
    add_home(rotate)
    rotate.add_argument("--out", metavar="BUNDLE",
                        help="bundle directory (default: <home>/admin, replaced)")
    rotate.set_defaults(run=run_rotate)


@contextmanager
def _credentials(args: argparse.Namespace) -> Iterator[tuple[App, CredentialService]]:
    from bios_ws.bootstrap import bootstrap
    from bios_ws.service.credentials import CredentialService

    home = Home.open(resolve_home_path(args.home))
    app = bootstrap(config_from_args(args, home))
    try:
        yield app, app.use(CredentialService)
    finally:
        app.close()


def run_list(args: argparse.Namespace) -> int:
    domain = None if args.domain is None else check_domain_id(args.domain)
    with _credentials(args) as (_, credentials):
        records = credentials.list(ADMIN, domain)
    now = datetime.now(UTC)
    rows = [_row(record, now) for record in records]
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print("no certificates")
        return 0
    columns = ("serial", "role", "domain", "subject", "not_after", "status")
    widths = {c: max(len(c), *(len(str(row[c] or "-")) for row in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip())
    for row in rows:
        print("  ".join(str(row[c] or "-").ljust(widths[c]) for c in columns).rstrip())
    return 0


def _row(record: CertificateRecord, now: datetime) -> dict[str, Any]:
    if record.role is Role.ADMIN:
        san = ["urn:vbios:role:admin"]
    elif record.role is Role.HOST:  # a delegate host's (`vbios host add`): named by subject
        san = [f"urn:vbios:host:{record.subject}"]
    else:
        san = [f"urn:vbios:domain:{record.domain_id}",
               f"urn:vbios:incarnation:{record.incarnation}"]
    return {
        "serial": record.serial_hex,
        "role": record.role.value,
        "domain": record.domain_id,
        "subject": record.subject,
        "san": san,
        "not_after": rfc3339(record.not_after),
        "status": record.status_at(now).value,
        "revoked_at": rfc3339_or_none(record.revoked_at),
        "reason": None if record.reason is None else record.reason.value,
    }


def issue_guest_bundle(credentials: CredentialService, domain_id: str, out: Path,
                       principal: Principal = ADMIN) -> ClientBundle:
    """Issue a certificate to ``domain_id`` and write its bundle in ``out`` (which must
    be new or empty: checked before anything is issued)."""
    from bios_ws.pki import check_bundle_dir, write_bundle_files

    check_bundle_dir(out)
    bundle = credentials.issue_guest(principal, domain_id)
    write_bundle_files(out, bundle.cert_pem, bundle.key_pem, bundle.ca_pem)
    return bundle


def run_issue(args: argparse.Namespace) -> int:
    domain = check_domain_id(args.domain)
    out = Path(args.out).expanduser()
    with _credentials(args) as (_, credentials):
        bundle = issue_guest_bundle(credentials, domain, out)
    print(f"issued certificate {bundle.record.serial_hex} to domain {domain}: {out}")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    reason = RevocationReason(args.reason)
    with _credentials(args) as (_, credentials):
        if args.domain is not None:
            revoked = credentials.revoke(ADMIN, domain_id=check_domain_id(args.domain),
                                         reason=reason)
        else:
            role = Role.ADMIN if args.admin is not None else None
            serial = _serial(args.admin if args.admin is not None else args.serial)
            revoked = credentials.revoke(ADMIN, serial=serial, role=role, reason=reason)
    if not revoked:
        print("nothing to revoke: already revoked")
        return 0
    for record in revoked:
        owner = {Role.ADMIN: "admin", Role.HOST: f"host {record.subject}"}.get(
            record.role, f"domain {record.domain_id}")
        print(f"revoked {record.serial_hex} ({owner}, {record.subject})")
    print("the CRL is published: new connections with these certificates are refused")
    return 0


def _serial(text: str) -> int:
    try:
        return parse_serial(text)
    except ValueError as exc:
        raise AdminError(f"{exc}: give the serial in hex, as `vbios cert list` prints it") \
            from None


def run_rotate(args: argparse.Namespace) -> int:
    from bios_ws.pki import check_bundle_dir, write_bundle_files

    with _credentials(args) as (app, credentials):
        home = app.config.home
        out = Path(args.out).expanduser() if args.out else home.admin_dir
        if args.out:
                    check_bundle_dir(out)
        bundle = credentials.rotate_admin(ADMIN)
        write_bundle_files(out, bundle.cert_pem, bundle.key_pem, bundle.ca_pem,
                           require_empty=bool(args.out))
    print(f"new admin bundle {out} (serial {bundle.record.serial_hex});"
          " every admin certificate before it is revoked")
    return 0
