"""The `vbios-client` command: a guest's BIOS settings and boot order from a shell,
the guest's own check of the host's boot integrity (`attest`, in ``attest_cli``), its
firmware updates (`firmware`, in ``firmware_cli``) and its system-management requests
(`sm`, in ``sm_cli``).
the guest's own check of the host's boot integrity (`attest`, in ``attest_cli``),
its firmware updates (`firmware`, in ``firmware_cli``), and its temperatures
(`thermal`, in ``thermal_cli``).
firmware updates (`firmware`, in ``firmware_cli``) and its events as they come (`events`,
in ``events_cli``).

Exit status: 0 done, 1 the service refused (a fault), `attest` found the host not
trusted, or enrollment stopped here (``credential_cli``), 2 usage (a malformed
bootstrap URI too), 3 the service could not be reached (connection, TLS, timeout).
Passwords never go in argv: they come from a file (--password-file),
VBIOS_SETUP_PASSWORD, or a prompt.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from vbios_client import (
    _output,
    attest_cli,
    credential_cli,
    events_cli,
    firmware_cli,
    sm_cli,
    thermal_cli,
)
from vbios_client._cli_inputs import (
    UsageError,
    parse_assignments,
    read_secret_file,
    typed_changes,
)
from vbios_client.exceptions import (
    EnrollmentError,
    FaultError,
    InvalidBootstrapUri,
    PasswordRequired,
    TransportError,
)
from vbios_client.models import (
    APPLY_TIMES,
    RESET_KEYS_TYPES,
    RESET_TYPES,
)

if TYPE_CHECKING:
    from vbios_client.client import BiosClient

PROG = "vbios-client"
EXIT_OK, EXIT_FAULT, EXIT_USAGE, EXIT_TRANSPORT = 0, 1, 2, 3


@dataclass
class Context:
    client: BiosClient
    args: argparse.Namespace
    out: TextIO
    stdin: TextIO
    err: TextIO

    @property
    def as_json(self) -> bool:
        return bool(getattr(self.args, "json", False))


Handler = Callable[[Context], int]


# -- inputs ------------------------------------------------------------------


def _setup_password(args: argparse.Namespace) -> str | None:
    path = getattr(args, "password_file", None)
    if path:
        return read_secret_file(path)
    return os.environ.get("VBIOS_SETUP_PASSWORD") or None


def _write(ctx: Context, call: Callable[[str | None], int]) -> int:
    """Run a write with the setup password; prompt once if the service asks and we can."""
    password = _setup_password(ctx.args)
    try:
        new_version = call(password)
    except PasswordRequired as exc:
        if password is not None or exc.attribute or not ctx.stdin.isatty():
            raise
        new_version = call(getpass.getpass("Setup password: "))
    _output.version(ctx.out, new_version, as_json=ctx.as_json)
    return EXIT_OK


# -- commands ----------------------------------------------------------------


def _attributes_get(ctx: Context) -> int:
    result = ctx.client.get_attributes(ctx.args.names or None)
    _output.attributes(ctx.out, result, as_json=ctx.as_json)
    return EXIT_OK


def _attributes_set(ctx: Context) -> int:
    texts = parse_assignments(ctx.args.assignments)
    changes = typed_changes(texts, ctx.client.get_attribute_registry())
    return _write(ctx, lambda pw: ctx.client.set_attributes(
        changes, ctx.args.apply_time, ctx.args.if_match, pw))


def _attributes_pending(ctx: Context) -> int:
    _output.attributes(ctx.out, ctx.client.get_pending_attributes(), as_json=ctx.as_json)
    return EXIT_OK


def _attributes_cancel(ctx: Context) -> int:
    return _write(ctx, lambda pw: ctx.client.cancel_pending_attributes(ctx.args.if_match, pw))


def _attributes_reset(ctx: Context) -> int:
    return _write(ctx, lambda pw: ctx.client.reset_attributes_to_defaults(ctx.args.if_match, pw))


def _attributes_registry(ctx: Context) -> int:
    _output.registry(ctx.out, ctx.client.get_attribute_registry(), as_json=ctx.as_json)
    return EXIT_OK


def _boot_get(ctx: Context) -> int:
    _output.boot(ctx.out, ctx.client.get_boot_order(), as_json=ctx.as_json)
    return EXIT_OK


def _boot_set(ctx: Context) -> int:
    return _write(ctx, lambda pw: ctx.client.set_boot_order(ctx.args.ids, ctx.args.if_match, pw))


def _boot_next(ctx: Context) -> int:
    if ctx.args.clear == (ctx.args.id is not None):
        raise UsageError("boot next takes either an option ID or --clear")
    option = None if ctx.args.clear else ctx.args.id
    return _write(ctx, lambda pw: ctx.client.set_boot_next(option, ctx.args.if_match, pw))


def _power_get(ctx: Context) -> int:
    _output.power(ctx.out, ctx.client.get_power_state(), as_json=ctx.as_json)
    return EXIT_OK


def _power_reset(ctx: Context) -> int:
    _output.reset(ctx.out, ctx.client.reset(ctx.args.reset_type), as_json=ctx.as_json)
    return EXIT_OK


def _secureboot_get(ctx: Context) -> int:
    _output.secure_boot(ctx.out, ctx.client.get_secure_boot(), as_json=ctx.as_json)
    return EXIT_OK


def _secureboot_switch(enabled: bool) -> Handler:
    def run(ctx: Context) -> int:
        return _write(ctx, lambda pw: ctx.client.set_secure_boot(enabled, ctx.args.if_match,
                                                                 pw))
    return run


def _secureboot_reset_keys(ctx: Context) -> int:
    return _write(ctx, lambda pw: ctx.client.reset_secure_boot_keys(
        ctx.args.reset_type, ctx.args.if_match, pw))


def _secureboot_databases(ctx: Context) -> int:
    _output.databases(ctx.out, ctx.client.get_secure_boot_databases(), as_json=ctx.as_json)
    return EXIT_OK


def _prompt_or_file(ctx: Context, path: str | None, prompt: str, *, confirm: bool) -> str:
    if path:
        return read_secret_file(path)
    if not ctx.stdin.isatty():
        raise UsageError("no terminal to prompt on: use --new-file (and --old-file)")
    first = getpass.getpass(prompt)
    if confirm and getpass.getpass("Again: ") != first:
        raise UsageError("the two entries differ")
    return first


def _password_change(ctx: Context) -> int:
    name = ctx.args.name
    old = ""
    if ctx.args.old_file or ctx.stdin.isatty():
        old = _prompt_or_file(ctx, ctx.args.old_file, f"Old {name} (empty if none): ",
                              confirm=False)
    if ctx.args.clear:
        new = ""
    else:
        new = _prompt_or_file(ctx, ctx.args.new_file, f"New {name}: ", confirm=True)
        if not new:
            raise UsageError("the new password is empty: use --clear to remove the password")
    return _write(ctx, lambda pw: ctx.client.change_password(
        name, old or None, new, ctx.args.if_match, pw))


# -- parser ------------------------------------------------------------------


def _globals(suppress: bool, *, call_timeout: bool = True) -> argparse.ArgumentParser:
    """Global options, accepted before or after the command (--timeout only before it
    without ``call_timeout``: a command whose own --timeout means something else)."""
    parent = argparse.ArgumentParser(add_help=False)
    default = argparse.SUPPRESS if suppress else None
    group = parent.add_argument_group("connection")
    group.add_argument("--url", default=default, help="service URL (env VBIOS_URL)")
    group.add_argument("--bundle", default=default, metavar="DIR",
                       help="client bundle: cert.pem, key.pem, ca.pem (env VBIOS_BUNDLE)")
    if call_timeout:
        group.add_argument("--timeout", type=_positive, metavar="SECONDS",
                           default=argparse.SUPPRESS if suppress else 30.0,
                           help="per-call timeout (default 30)")
    group.add_argument("--json", action="store_true",
                       default=argparse.SUPPRESS if suppress else False,
                       help="print JSON")
    group.add_argument("--password-file", default=default, metavar="FILE",
                       help="file holding the setup password (else env VBIOS_SETUP_PASSWORD)")
    return parent


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return value


def _version_number(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a version number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("a version is not negative")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, parents=[_globals(False)], allow_abbrev=False,
                                     description="Read and change this guest's vBIOS.")
    leaf = [_globals(True)]
    areas = parser.add_subparsers(dest="area", required=True, metavar="AREA")

    def command(group: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                handler: Handler, text: str, *, write: bool = False) -> argparse.ArgumentParser:
        sub = group.add_parser(name, parents=leaf, help=text, description=text,
                              allow_abbrev=False)
        sub.set_defaults(run=handler)
        if write:
            sub.add_argument("--if-match", type=_version_number, metavar="VERSION",
                             help="refuse (VersionConflict) unless the domain is at VERSION")
        return sub

    def area(name: str, text: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        return areas.add_parser(name, help=text, allow_abbrev=False).add_subparsers(
            dest="command", required=True, metavar="COMMAND")

    attrs = area("attributes", "BIOS attributes")
    command(attrs, "get", _attributes_get, "current values").add_argument(
        "names", nargs="*", metavar="NAME")
    set_cmd = command(attrs, "set", _attributes_set, "change values", write=True)
    set_cmd.add_argument("assignments", nargs="+", metavar="NAME=VALUE")
    set_cmd.add_argument("--apply-time", choices=APPLY_TIMES, default="Immediate")
    command(attrs, "pending", _attributes_pending, "values waiting for the next reset")
    command(attrs, "cancel", _attributes_cancel, "drop pending values", write=True)
    command(attrs, "registry", _attributes_registry, "attribute definitions")
    command(attrs, "reset-defaults", _attributes_reset,
            "make registry defaults pending", write=True)

    boot = area("boot", "boot order")
    command(boot, "get", _boot_get, "boot options, order and next boot")
    command(boot, "set", _boot_set, "set the boot order", write=True).add_argument(
        "ids", nargs="+", metavar="ID")
    next_cmd = command(boot, "next", _boot_next, "boot ID once at the next reset", write=True)
    next_cmd.add_argument("id", nargs="?", metavar="ID")
    next_cmd.add_argument("--clear", action="store_true", help="clear the next boot")

    power = area("power", "power state and requests")
    command(power, "get", _power_get, "power state, last reset cause and time, pending changes")
    command(power, "reset", _power_reset, "a power request").add_argument(
        "reset_type", choices=RESET_TYPES, metavar="TYPE", help=", ".join(RESET_TYPES))

    secure = area("secureboot", "Secure Boot: the switch, the keys, the databases")
    command(secure, "get", _secureboot_get,
            "the switch, what the firmware enforced at the last boot, the mode")
    command(secure, "enable", _secureboot_switch(True), "turn Secure Boot on at the next reset",
            write=True)
    command(secure, "disable", _secureboot_switch(False),
            "turn Secure Boot off at the next reset", write=True)
    command(secure, "reset-keys", _secureboot_reset_keys, "reset or delete the keys",
            write=True).add_argument("reset_type", choices=RESET_KEYS_TYPES, metavar="TYPE",
                                     help=", ".join(RESET_KEYS_TYPES))
    command(secure, "databases", _secureboot_databases, "PK, KEK, db and dbx certificates")

    password = area("password", "BIOS passwords")
    change = command(password, "change", _password_change,
                     "set, change or clear a password attribute", write=True)
    change.add_argument("name", metavar="NAME")
    change.add_argument("--old-file", metavar="FILE", help="file holding the old password")
    change.add_argument("--new-file", metavar="FILE", help="file holding the new password")
    change.add_argument("--clear", action="store_true", help="remove the password")
    attest_cli.register(areas, leaf)
    credential_cli.register(areas, leaf)
    firmware_cli.register(areas, leaf, [_globals(True, call_timeout=False)])
    sm_cli.register(areas, leaf)
    thermal_cli.register(areas, leaf)
    events_cli.register(areas, leaf)
    return parser


def _connect(args: argparse.Namespace) -> BiosClient:
    url = args.url or os.environ.get("VBIOS_URL")
    bundle = args.bundle or os.environ.get("VBIOS_BUNDLE")
    if not url or not bundle:
        raise UsageError("give --url and --bundle (or set VBIOS_URL and VBIOS_BUNDLE)")
    from vbios_client.client import BiosClient  # not for --help: it brings lxml

    try:
        return BiosClient.from_bundle(url, Path(bundle), timeout=args.timeout,
                                      auto_renew=getattr(args, "auto_renew", True))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None,
         stderr: TextIO | None = None, stdin: TextIO | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "standalone", None) is not None:
            return int(args.standalone(args, out))
        with _connect(args) as client:
            status = int(args.run(Context(client, args, out, stdin or sys.stdin, err)))
            notice = credential_cli.renewal_notice(client, args)
            if notice:
                err.write(f"{PROG}: {notice}\n")
            return status
    except UsageError as exc:
        err.write(f"{PROG}: error: {exc}\n")
        return EXIT_USAGE
    except FaultError as exc:
        err.write(f"{PROG}: {exc.code}: {_one_line(exc.message)}\n")
        return EXIT_FAULT
    except TransportError as exc:
        err.write(f"{PROG}: TransportError: {_one_line(str(exc))}\n")
        return EXIT_TRANSPORT
    except EnrollmentError as exc:
        err.write(f"{PROG}: {type(exc).__name__}: {_one_line(str(exc))}\n")
        return EXIT_USAGE if isinstance(exc, InvalidBootstrapUri) else EXIT_FAULT
    except (ValueError, TypeError) as exc:
        err.write(f"{PROG}: error: {_one_line(str(exc))}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and let no flush at exit fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, out.fileno())
        return EXIT_FAULT


def _one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
