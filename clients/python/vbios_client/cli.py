"""The `vbios-client` command: a guest's BIOS settings and boot order from a shell, its
passwords (`password`, in ``password_cli``), the guest's own check of the host's boot
integrity (`attest`, in ``attest_cli``), its credential (`enroll`, `cert renew`,
`provisioning`, in ``credential_cli``), its firmware updates (`firmware`, in
``firmware_cli``), its system-management requests (`sm`, in ``sm_cli``), its
temperatures (`thermal`, in ``thermal_cli``) and its events as they come (`events`, in
``events_cli``).

Exit status: 0 done, 1 the service refused (a fault), `attest` found the host not
trusted, or enrollment stopped here (``credential_cli``), 2 usage (a malformed
bootstrap URI too), 3 the service could not be reached (connection, TLS, timeout);
``vbios-client --help`` says so too. With --json a failure is also printed on stdout as
``{"error": {"code": ..., "message": ...}}`` (``_cli_failures``). The command line is
read by ``_cli_parser``; what is printed goes through ``_cli_text`` (times, JSON, and
control and bidirectional characters escaped). Passwords never go in argv: they come
from a file (--password-file), VBIOS_SETUP_PASSWORD, or a prompt.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

from vbios_client import (
    _output,
    attest_cli,
    credential_cli,
    events_cli,
    firmware_cli,
    password_cli,
    sm_cli,
    thermal_cli,
)
from vbios_client._bundle import key_mode_warning
from vbios_client._cli_context import Context, Handler, write
from vbios_client._cli_failures import EXIT_FAULT, EXIT_INTERRUPTED, failure_of, usage
from vbios_client._cli_inputs import (
    UsageError,
    parse_assignments,
    read_secret_file,
    typed_changes,
)
from vbios_client._cli_parser import (
    PROG,
    CommandLineError,
    describe_from_help,
    global_options,
    if_match_option,
    parse,
    top_parser,
)
from vbios_client._cli_text import EscapingWriter, escape_controls
from vbios_client.models import (
    APPLY_TIMES,
    RESET_KEYS_TYPES,
    RESET_TYPES,
)

if TYPE_CHECKING:
    from vbios_client.client import BiosClient

__all__ = ["Context", "Handler", "UsageError", "build_parser", "main", "parse_assignments",
           "read_secret_file", "typed_changes"]

EXIT_OK = 0


# -- commands ----------------------------------------------------------------


def _attributes_get(ctx: Context) -> int:
    result = ctx.client.get_attributes(ctx.args.names or None)
    _output.attributes(ctx.out, result, as_json=ctx.as_json,
                       pending=ctx.client.get_pending_attributes())
    return EXIT_OK


def _attributes_set(ctx: Context) -> int:
    texts = parse_assignments(ctx.args.assignments)
    changes = typed_changes(texts, ctx.client.get_attribute_registry())
    return write(ctx, lambda pw: ctx.client.set_attributes(
        changes, ctx.args.apply_time, ctx.args.if_match, pw))


def _attributes_pending(ctx: Context) -> int:
    _output.attributes(ctx.out, ctx.client.get_pending_attributes(), as_json=ctx.as_json)
    return EXIT_OK


def _attributes_cancel(ctx: Context) -> int:
    return write(ctx, lambda pw: ctx.client.cancel_pending_attributes(ctx.args.if_match, pw))


def _attributes_reset(ctx: Context) -> int:
    return write(ctx, lambda pw: ctx.client.reset_attributes_to_defaults(ctx.args.if_match, pw))


def _attributes_registry(ctx: Context) -> int:
    _output.registry(ctx.out, ctx.client.get_attribute_registry(), as_json=ctx.as_json)
    return EXIT_OK


def _boot_get(ctx: Context) -> int:
    _output.boot(ctx.out, ctx.client.get_boot_order(), as_json=ctx.as_json)
    return EXIT_OK


def _boot_set(ctx: Context) -> int:
    return write(ctx, lambda pw: ctx.client.set_boot_order(ctx.args.ids, ctx.args.if_match, pw))


def _boot_next(ctx: Context) -> int:
    if ctx.args.clear == (ctx.args.id is not None):
        raise UsageError("boot next takes either an option ID or --clear")
    option = None if ctx.args.clear else ctx.args.id
    return write(ctx, lambda pw: ctx.client.set_boot_next(option, ctx.args.if_match, pw))


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
        return write(ctx, lambda pw: ctx.client.set_secure_boot(enabled, ctx.args.if_match,
                                                                 pw))
    return run


def _secureboot_reset_keys(ctx: Context) -> int:
    return write(ctx, lambda pw: ctx.client.reset_secure_boot_keys(
        ctx.args.reset_type, ctx.args.if_match, pw))


def _secureboot_databases(ctx: Context) -> int:
    _output.databases(ctx.out, ctx.client.get_secure_boot_databases(), as_json=ctx.as_json)
    return EXIT_OK


# -- parser ------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = top_parser([global_options(False)])
    leaf = [global_options(True)]
    areas = parser.add_subparsers(dest="area", required=True, metavar="AREA")

    def command(group: argparse._SubParsersAction[argparse.ArgumentParser], name: str,
                handler: Handler, text: str, *, write: bool = False) -> argparse.ArgumentParser:
        sub = group.add_parser(name, parents=leaf, help=text, description=text,
                               allow_abbrev=False)
        sub.set_defaults(run=handler)
        if write:
            if_match_option(sub)
        return sub

    def area(name: str, text: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        return areas.add_parser(name, help=text, description=text,
                                allow_abbrev=False).add_subparsers(
            dest="command", required=True, metavar="COMMAND")

    attrs = area("attributes", "BIOS attributes")
    command(attrs, "get", _attributes_get,
            "current values, and the values pending beside them").add_argument(
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

    password_cli.register(areas, leaf)
    attest_cli.register(areas, leaf)
    credential_cli.register(areas, leaf)
    firmware_cli.register(areas, leaf, [global_options(True, call_timeout=False)])
    sm_cli.register(areas, leaf)
    thermal_cli.register(areas, leaf)
    events_cli.register(areas, leaf)
    describe_from_help(parser)
    return parser


def _bundle(args: argparse.Namespace) -> str | None:
    return args.bundle or os.environ.get("VBIOS_BUNDLE") or None


def _connect(args: argparse.Namespace) -> BiosClient:
    url = args.url or os.environ.get("VBIOS_URL")
    bundle = _bundle(args)
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
    """Run one command; its exit status (a mistake in the command line exits, as argparse
    does). What it prints on ``stdout`` goes through ``EscapingWriter``."""
    raw_out, err = stdout or sys.stdout, stderr or sys.stderr
    words = list(sys.argv[1:] if argv is None else argv)
    out = cast(TextIO, EscapingWriter(raw_out))
    try:
        args = parse(build_parser(), words)
    except CommandLineError as exc:
        # Said where and as argparse says it (and its --help, --version): on sys.stderr,
        # JSON on sys.stdout when --json is among the words, then exit 2.
        exc.parser.print_usage(sys.stderr)
        raise SystemExit(usage(exc.message).report(
            sys.stdout, sys.stderr, as_json="--json" in words, prog=exc.parser.prog)) from None
    as_json = bool(getattr(args, "json", False))
    try:
        return _run(args, out, err, stdin or sys.stdin)
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and let no flush at exit fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        with contextlib.suppress(OSError, ValueError):
            os.dup2(devnull, raw_out.fileno())
        return EXIT_FAULT
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as exc:
        failure = failure_of(exc)
        if failure is None:
            raise
        return failure.report(raw_out, err, as_json=as_json)


def _run(args: argparse.Namespace, out: TextIO, err: TextIO, stdin: TextIO) -> int:
    if getattr(args, "standalone", None) is not None:
        return int(args.standalone(args, out))
    bundle = _bundle(args)
    warning = key_mode_warning(Path(bundle)) if bundle else None
    if warning:
        err.write(f"{PROG}: warning: {escape_controls(warning)}\n")
    with _connect(args) as client:
        status = int(args.run(Context(client, args, out, stdin, err)))
        cached = getattr(client, "last_answer_cached", None)  # a stub of tests has none
        if cached is not None:
            age = "of unknown age" if cached.age is None else f"{cached.age} s old"
            err.write(f"{PROG}: note: the remote vBIOS {escape_controls(cached.remote)} is"
                      f" unavailable: this is its cached answer, {age}\n")
        notice = credential_cli.renewal_notice(client, args)
        if notice:
            err.write(f"{PROG}: {escape_controls(notice)}\n")
        return status


if __name__ == "__main__":
    sys.exit(main())
