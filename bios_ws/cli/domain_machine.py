"""`vbios domain disk|netboot|secureboot ...`: what a domain's machine is made of, and its
Secure Boot certificates. Changes reach the machine's firmware at its next boot."""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bios_ws.cli.output import print_json
from bios_ws.domain.firmware import DATABASES
from bios_ws.domain.principal import Principal, check_domain_id
from bios_ws.errors import AdminError
from bios_ws.platform.port import NetworkBoot
from bios_ws.platform.qemu.httpboot import HTTP_BOOT_ADDRESS

if TYPE_CHECKING:  # imported where used: `vbios --help` loads no crypto, database or SOAP
    from bios_ws.bootstrap import App
    from bios_ws.service.domains import DomainService
    from bios_ws.service.secureboot import SecureBootService

Subparsers = argparse._SubParsersAction
Action = Callable[["App", argparse.Namespace], int]
ADMIN = Principal.admin()


def register(sub: Subparsers[argparse.ArgumentParser], named: argparse.ArgumentParser,
             run_app: Callable[[argparse.Namespace, Action], int]) -> None:
    """Add the commands to ``vbios domain``; ``run_app(args, action)`` runs
    ``action(app, args)`` on the home's object graph."""
    disk = sub.add_parser("disk", help="the disks of a domain's machine")
    disk_sub = disk.add_subparsers(dest="disk_command", required=True, metavar="COMMAND")
    for name, text, action in (("attach", "attach a read-only disk (an image or a directory)",
                                _attach), ("detach", "detach a disk", _detach)):
        command = disk_sub.add_parser(name, parents=[named], help=text)
        command.add_argument("disk", metavar="IMAGE", type=Path)
        command.set_defaults(run=lambda args, action=action: run_app(args, action))
    listing = disk_sub.add_parser("list", parents=[named], help="the attached disks")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=lambda args: run_app(args, _list))

    netboot = sub.add_parser("netboot", parents=[named],
                             help="what network boot fetches from (the guest's network is"
                                  " closed: it reaches only these)")
    netboot.add_argument("--tftp", metavar="DIR", type=Path,
                         help="the TFTP directory PXE boots from")
    netboot.add_argument("--bootfile", metavar="FILE", help="the file PXE boots, in DIR")
    netboot.add_argument("--http", metavar="DIR", type=Path,
                         help="the directory HTTP boot serves at http://10.0.2.100/"
                              " (HttpDev1Uri names a file in it)")
    netboot.add_argument("--off", action="store_true", help="no network boot source")
    netboot.set_defaults(run=lambda args: run_app(args, _netboot))

    secure = sub.add_parser("secureboot", help="a domain's Secure Boot certificates")
    secure_sub = secure.add_subparsers(dest="secureboot_command", required=True,
                                       metavar="COMMAND")
    for name, text, action in (("add-cert", "add a certificate to a database", _add_cert),
                               ("remove-cert", "remove a certificate from a database",
                                _remove_cert)):
        command = secure_sub.add_parser(name, parents=[named], help=text)
        command.add_argument("database", choices=DATABASES, metavar="DB",
                             help=", ".join(DATABASES))
        command.add_argument("pem", metavar="PEM", type=Path, help="the certificate (PEM)")
        command.set_defaults(run=lambda args, action=action: run_app(args, action))


def _name(args: argparse.Namespace) -> str:
    return check_domain_id(args.name)


def _attach(app: App, args: argparse.Namespace) -> int:
    _domains(app).attach_disk(ADMIN, _name(args), args.disk)
    print(f"{args.name}: attached {args.disk.expanduser().absolute()} (from its next boot)")
    return 0


def _detach(app: App, args: argparse.Namespace) -> int:
    _domains(app).detach_disk(ADMIN, _name(args), args.disk)
    print(f"{args.name}: detached {args.disk.expanduser().absolute()}")
    return 0


def _list(app: App, args: argparse.Namespace) -> int:
    disks = _domains(app).disks(ADMIN, _name(args))
    if args.json:
        print_json([str(d) for d in disks])
    elif not disks:
        print("no disks")
    else:
        for index, disk in enumerate(disks):
            print(f"{index}  {disk}{'  (boot disk)' if index == 0 else ''}")
    return 0


def _netboot(app: App, args: argparse.Namespace) -> int:
    given = args.tftp is not None or args.bootfile is not None or args.http is not None
    if args.off == given:
        raise AdminError("give --tftp DIR [--bootfile FILE] and/or --http DIR, or --off")
    source = NetworkBoot(args.tftp, args.bootfile, args.http)
    _domains(app).set_network_boot(ADMIN, _name(args), source)
    if args.off:
        print(f"{args.name}: no network boot source (an attempt fails quickly)")
    if args.tftp is not None:
        print(f"{args.name}: PXE boots {args.bootfile or '(no file)'} from {args.tftp}")
    if args.http is not None:
        print(f"{args.name}: HTTP boot serves {args.http} at http://{HTTP_BOOT_ADDRESS}/")
    return 0


def _add_cert(app: App, args: argparse.Namespace) -> int:
    version = _secure_boot(app).add_certificate(ADMIN, _name(args), args.database,
                                                _read_pem(args.pem))
    print(f"{args.name}: added the certificate to {args.database} (settings version"
          f" {version}; the firmware gets it at its next boot)")
    return 0


def _remove_cert(app: App, args: argparse.Namespace) -> int:
    from bios_ws.pki.certinfo import pem_certificate_der

    fingerprint = hashlib.sha256(pem_certificate_der(_read_pem(args.pem))).hexdigest()
    version = _secure_boot(app).remove_certificate(ADMIN, _name(args), args.database,
                                                   fingerprint)
    print(f"{args.name}: removed {fingerprint} from {args.database} (settings version"
          f" {version})")
    return 0


def _read_pem(path: Path) -> str:
    from bios_ws.pki.certinfo import MAX_PEM_CHARS

    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PEM_CHARS + 1)
    except OSError as exc:
        raise AdminError(f"cannot read {path}: {exc.strerror}") from None
    return data.decode("ascii", errors="replace")


def _domains(app: App) -> DomainService:
    from bios_ws.service.domains import DomainService

    return app.use(DomainService)


def _secure_boot(app: App) -> SecureBootService:
    from bios_ws.service.secureboot import SecureBootService

    return app.use(SecureBootService)
