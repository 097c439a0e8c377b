"""`vbios-client enroll`, `cert renew` and `provisioning`: the guest's own credential.

    vbios-client enroll URI --out BUNDLE [--json]   # no --url, no --bundle: the URI says where
    vbios-client cert renew [--json]                # a fresh key; the bundle replaced in place
    vbios-client provisioning [--json]              # S1|S2|S3, the next step, not-after

``enroll`` makes the guest's key, checks the server's CA against the URI's pin and
writes a new bundle (cert.pem, key.pem, ca.pem) into BUNDLE, a new or empty
directory. Exit status as for every command: 1 when the service refused or
enrollment stopped here (the CA is not the pinned one, the certificate returned
does not match, the bundle directory is in the way), 2 a malformed URI or other
usage mistake, 3 the service could not be reached.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from vbios_client import _output
from vbios_client._cli_text import utc_text
from vbios_client.models import IssuedBundle

if TYPE_CHECKING:
    from vbios_client.cli import Context

EXIT_OK = 0


def register(areas: argparse._SubParsersAction[argparse.ArgumentParser],
             leaf: Sequence[argparse.ArgumentParser]) -> None:
    text = "enroll with a one-time bootstrap URI: a key made here, a new bundle in --out"
    command = areas.add_parser("enroll", parents=list(leaf), help=text, description=text,
                               allow_abbrev=False)
    command.add_argument("uri", metavar="URI",
                         help="the bootstrap URI the admin printed (vbios domain enroll NAME)")
    command.add_argument("--out", required=True, type=Path, metavar="BUNDLE",
                         help="the bundle directory to write (new or empty)")
    command.set_defaults(standalone=run_enroll)

    cert = areas.add_parser("cert", help="this guest's certificate", allow_abbrev=False
                            ).add_subparsers(dest="command", required=True, metavar="COMMAND")
    text = "renew the certificate: a fresh key, the bundle's cert.pem and key.pem replaced"
    renew_cmd = cert.add_parser("renew", parents=list(leaf), help=text, description=text,
                            allow_abbrev=False)
    renew_cmd.set_defaults(run=renew, auto_renew=False)

    text = "provisioning state (S1, S2, S3), the next step, the certificate's end"
    state = areas.add_parser("provisioning", parents=list(leaf), help=text, description=text,
                             allow_abbrev=False)
    state.set_defaults(run=_provisioning)


def run_enroll(args: argparse.Namespace, out: TextIO) -> int:
    """``enroll`` needs no client: the URI names the server and the CA to trust."""
    given = [f"--{name}" for name in ("url", "bundle") if getattr(args, name, None)]
    if given:
        raise ValueError(f"enroll takes no {' or '.join(given)}: the URI says where to"
                         " enroll, --out where to write the bundle")
    from vbios_client import enrollment  # brings cryptography, requests and lxml

    issued = enrollment.enroll(args.uri, args.out, timeout=args.timeout)
    _output.issued_bundle(out, "enrolled", issued, as_json=_as_json(args))
    return EXIT_OK


def renew(ctx: Context) -> int:
    issued = ctx.client.renew_certificate()
    _output.issued_bundle(ctx.out, "renewed", issued, as_json=ctx.as_json)
    return EXIT_OK


def _provisioning(ctx: Context) -> int:
    _output.provisioning(ctx.out, ctx.client.get_provisioning_state(), as_json=ctx.as_json)
    return EXIT_OK


def renewal_notice(client: object, args: argparse.Namespace) -> str | None:
    """A line for stderr when the client renewed its certificate by itself."""
    renewed = getattr(client, "renewed", None)
    if not isinstance(renewed, IssuedBundle) or getattr(args, "run", None) is renew:
        return None
    return (f"renewed the certificate in {renewed.path}: serial {renewed.serial},"
            f" valid until {utc_text(renewed.not_after)}")


def _as_json(args: Any) -> bool:
    return bool(getattr(args, "json", False))
