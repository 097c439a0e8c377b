"""`vbios init` and `vbios audit ...`: the host admin's commands (domains: ``cli.domain``).

Each command resolves its home when it runs (--home, else VBIOS_HOME, else
the default) and refuses with a ``VbiosError``, which ``bios_ws.cli.main``
prints as one line.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from bios_ws.cli import cert
from bios_ws.cli.options import HOME_HELP, add_tpm_options, chosen_tpm
from bios_ws.cli.output import print_json, rfc3339
from bios_ws.config import Config
from bios_ws.domain.audit import AuditEntry, verify_chain
from bios_ws.errors import AdminError
from bios_ws.home import DEV_TPM, Home, resolve_home_path
from bios_ws.launch.warnings import NO_TPM_WARNING
from bios_ws.tpm.port import SERVICE_PCR

if TYPE_CHECKING:  # imported where used: `vbios --help` loads no crypto, database or SOAP
    from bios_ws.bootstrap import App

__all__ = ["register"]

Subparsers = argparse._SubParsersAction
DIGEST_PREFIX = 12
#: The columns of `vbios audit show` (CHANGES: the start of the changes' digest).
AUDIT_COLUMNS = ("SEQ", "TIME", "PRINCIPAL", "OPERATION", "DOMAIN", "OUTCOME", "CHANGES")
#: ``pki.DEFAULT_SERVER_NAMES``, for the help (a test checks they agree).
SERVER_NAMES_HELP = "localhost, 127.0.0.1"


def register(commands: Subparsers[argparse.ArgumentParser]) -> None:
    home_option = argparse.ArgumentParser(add_help=False)
    home_option.add_argument("--home", metavar="DIR", help=HOME_HELP)

    init = commands.add_parser("init", parents=[home_option],
                               help="create a state directory: CA, server and admin keys")
    init.add_argument("--san", action="append", metavar="NAME",
                      help="DNS name or IP address of the server certificate (repeatable;"
                           f" default: {SERVER_NAMES_HELP})")
    add_tpm_options(init, for_init=True)
    init.add_argument("--store", metavar="URL",
                      help="the state store: postgresql+psycopg://USER@HOST/DATABASE, shared"
                           " by a fleet (no password in it: a libpq passfile or peer"
                           " authentication; docs/store.md); default: SQLite in the home")
    init.add_argument("--host-name", metavar="NAME",
                      help="the name of this host in the store, unique among the hosts sharing"
                           " it (a-z, 0-9, '.', '-'; default: this machine's name)")
    init.set_defaults(run=run_init)

    audit = commands.add_parser("audit", help="show or verify the audit log")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True,
                                          metavar="COMMAND")
    show = audit_commands.add_parser("show", parents=[home_option], help="print audit entries")
    show.add_argument("--json", action="store_true", help="print JSON")
    show.add_argument("--since", type=_positive_int, default=1, metavar="N",
                      help="start at entry N (default 1)")
    show.set_defaults(run=run_audit_show)
    verify = audit_commands.add_parser("verify", parents=[home_option],
                                       help="check the hash chain of the audit log")
    verify.set_defaults(run=run_audit_verify)

    admin = commands.add_parser("admin", help="the admin's own credential")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True,
                                          metavar="COMMAND")
    cert.register_admin(admin_commands)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _open_home(args: argparse.Namespace) -> Home:
    return Home.open(resolve_home_path(args.home))


@contextmanager
def _services(home: Home) -> Iterator[App]:
    """The object graph a command on ``home`` works with."""
    from bios_ws.bootstrap import bootstrap

    app = bootstrap(Config.of(home))
    try:
        yield app
    finally:
        app.close()


# -- init --------------------------------------------------------------------------


def run_init(args: argparse.Namespace) -> int:
    from bios_ws.bootstrap import initialize
    from bios_ws.pki import DEFAULT_SERVER_NAMES

    names = tuple(args.san) if args.san else DEFAULT_SERVER_NAMES
    tpm = chosen_tpm(args) or DEV_TPM
    path = resolve_home_path(args.home)
    if args.store is not None:
        _record_store(path, args.store)
    if tpm.is_none:
        print(NO_TPM_WARNING, file=sys.stderr, flush=True)
    done = initialize(path, names, tpm=tpm, host_name=args.host_name)
    home = done.home
    print(f"initialized vbios state directory {home.path}")
    print(f"  CA certificate:     {home.ca_cert}")
    print(f"  server certificate: {home.server_cert} (names: {', '.join(names)})")
    print(f"  admin bundle:       {home.admin_dir}")
    if done.recovery_code is None:
        print(f"  key passphrase:     {home.passphrase_file} (0600, NO TPM: development only)")
    else:
        print(f"  TPM:                {tpm}")
        if tpm.is_dev:
            print(f"                      the development TPM (swtpm) runs now; stop it with:"
                  f" vbios tpm stop --home {home.path}")
        print(f"  sealed passphrases: {home.sealed_dir} (PCRs 0-7 and {SERVICE_PCR}, sha256)")
    print(f"  attribute registry: {home.registry_path}")
    print(f"  database:           {_store_shown(home)}")
    print(f"  host name:          {home.host_name} (in that store)")
    if done.recovery_code is not None:
        print()
        print("RECOVERY CODE (shown once, stored nowhere; keep it offline):")
        print(f"  {done.recovery_code}")
        print("  vbios tpm reseal asks for it after an intended change of the boot"
              " (firmware, bootloader, kernel).")
    return 0


def _record_store(path: Path, url: str) -> None:
    """Record ``url`` (checked: psycopg 3, no password) in a home not yet initialized."""
    from bios_ws.store.urls import check_store_url

    check_store_url(url)
    home = Home.create(path)
    if home.is_initialized:
        raise AdminError(f"{home.path} is already initialized")
    home.record_store(url)


def _store_shown(home: Home) -> str:
    if home.recorded_store is None:
        return str(home.db_path)
    from bios_ws.store.engine import safe_url
    from bios_ws.store.urls import check_store_url

    return safe_url(check_store_url(home.recorded_store))


# -- audit -------------------------------------------------------------------------


def _entries(home: Home, since_seq: int = 1) -> list[AuditEntry]:
    with _services(home) as services, services.store.unit_of_work() as uow:
        return list(uow.audit.entries(since_seq=since_seq))


def run_audit_show(args: argparse.Namespace) -> int:
    entries = _entries(_open_home(args), args.since)
    if args.json:
        rows = [{
            "seq": e.seq, "time": rfc3339(e.time, precise=True), "principal": e.principal,
            "operation": e.operation, "domain": e.domain_id, "outcome": e.outcome,
            "changes_digest": e.changes_digest, "prev_hash": e.prev_hash,
            "entry_hash": e.entry_hash,
        } for e in entries]
        print_json(rows)
        return 0
    if not entries:
        print("no audit entries")
        return 0
    lines = [(str(e.seq), rfc3339(e.time), e.principal, e.operation, e.domain_id or "-",
              e.outcome, e.changes_digest[:DIGEST_PREFIX]) for e in entries]
    widths = [max(len(cell) for cell in column) for column in zip(AUDIT_COLUMNS, *lines,
                                                                   strict=True)]
    for row in (AUDIT_COLUMNS, *lines):
        cells = [row[0].rjust(widths[0]), *(c.ljust(w) for c, w in zip(row[1:], widths[1:],
                                                                       strict=True))]
        print("  ".join(cells).rstrip())
    return 0


def run_audit_verify(args: argparse.Namespace) -> int:
    entries = _entries(_open_home(args))
    broken = verify_chain(entries)
    if broken is not None:
        raise AdminError(f"audit log is not intact: {broken.reason}")
    print(f"audit log intact: {len(entries)} entries")
    return 0
