"""`vbios firmware trust add|remove|list`: the signer certificates the admin trusts for
capsules, kept in the state store (every server process and host on it sees one set).

    vbios firmware trust add CERT.pem [--home DIR]
    vbios firmware trust remove CERT.pem|FINGERPRINT [--home DIR]
    vbios firmware trust list [--json] [--home DIR]

A trusted certificate is a capsule signer's own, or the root (or intermediate) its chain
ends at. `vbios capsule show FILE --home DIR` verifies against this set.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bios_ws.cli.eventlog import read_bounded_file
from bios_ws.cli.options import add_home, config_from_args
from bios_ws.cli.output import print_json, rfc3339
from bios_ws.domain.principal import Principal
from bios_ws.home import Home, resolve_home_path

if TYPE_CHECKING:  # imported where used: `vbios --help` loads no crypto or database
    from bios_ws.domain.firmware_trust import TrustedSigner
    from bios_ws.service.firmware_trust import FirmwareTrustService

__all__ = ["register", "trusted_anchors"]

ADMIN = Principal.admin()
MAX_CERTIFICATE_FILE_BYTES = 64 * 1024


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    firmware = commands.add_parser("firmware", help="firmware updates: trusted capsule signers")
    areas = firmware.add_subparsers(dest="firmware_area", required=True, metavar="AREA")
    trust = areas.add_parser("trust", help="the signer certificates trusted for capsules")
    sub = trust.add_subparsers(dest="trust_command", required=True, metavar="COMMAND")

    add = sub.add_parser("add", help="trust a signer certificate (or its chain's root)")
    add.add_argument("certificate", metavar="CERT", type=Path, help="the certificate (PEM)")
    add_home(add)
    add.set_defaults(run=run_add)

    remove = sub.add_parser("remove", help="trust a certificate no more")
    remove.add_argument("reference", metavar="CERT|FINGERPRINT",
                        help="the certificate (PEM file) or its SHA-256 fingerprint")
    add_home(remove)
    remove.set_defaults(run=run_remove)

    listing = sub.add_parser("list", help="every trusted signer certificate")
    listing.add_argument("--json", action="store_true", help="print JSON")
    add_home(listing)
    listing.set_defaults(run=run_list)


@contextmanager
def _trust(args: argparse.Namespace) -> Iterator[FirmwareTrustService]:
    from bios_ws.bootstrap import bootstrap
    from bios_ws.service.firmware_trust import FirmwareTrustService

    home = Home.open(resolve_home_path(args.home))
    app = bootstrap(config_from_args(args, home))
    try:
        yield app.use(FirmwareTrustService)
    finally:
        app.close()


def trusted_anchors(args: argparse.Namespace) -> list[bytes]:
    """The DER of every signer the home's store trusts (for `capsule show --home`)."""
    with _trust(args) as trust:
        return [signer.der for signer in trust.list(ADMIN)]


def run_add(args: argparse.Namespace) -> int:
    data = read_bounded_file(args.certificate, MAX_CERTIFICATE_FILE_BYTES, "certificate")
    with _trust(args) as trust:
        done = trust.add(ADMIN, data)
    state = "trusted" if done.added else "already trusted (nothing changed)"
    print(f"{state}: {done.signer.subject}, SHA-256 {done.signer.fingerprint},"
          f" valid until {rfc3339(done.signer.not_after)}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from bios_ws.domain.firmware_trust import normalize_fingerprint

    reference: str | bytes = args.reference
    if normalize_fingerprint(args.reference) is None and Path(args.reference).exists():
        reference = read_bounded_file(Path(args.reference), MAX_CERTIFICATE_FILE_BYTES,
                                      "certificate")
    with _trust(args) as trust:
        removed = trust.remove(ADMIN, reference)
    print(f"no longer trusted: {removed.subject}, SHA-256 {removed.fingerprint}")
    return 0


def run_list(args: argparse.Namespace) -> int:
    with _trust(args) as trust:
        signers = trust.list(ADMIN)
    if args.json:
        print_json([_row(signer) for signer in signers])
        return 0
    if not signers:
        print("no trusted firmware signers (add one: vbios firmware trust add CERT.pem)")
        return 0
    for signer in signers:
        print(f"{signer.fingerprint}  until {rfc3339(signer.not_after)}  {signer.subject}")
    return 0


def _row(signer: TrustedSigner) -> dict[str, str]:
    return {"sha256_fingerprint": signer.fingerprint, "subject": signer.subject,
            "not_after": rfc3339(signer.not_after), "added_at": rfc3339(signer.added_at)}
