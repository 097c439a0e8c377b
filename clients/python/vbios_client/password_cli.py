"""`vbios-client password change NAME`: set, change or clear a password attribute.

    vbios-client password change SetupPassword [--new-password-file FILE | --clear]
    vbios-client password change PowerOnPassword [--old-password-file FILE]
                                                 [--new-password-file FILE | --clear]

The setup password is one thing with one name: the global ``--password-file`` (or
VBIOS_SETUP_PASSWORD) holds it for every command, and changing it reads the current one
from there too. Another password's current value (needed once it is set) comes from
``--old-password-file``. Without a file, each is asked for on a terminal (the new one
twice). ``--old-file`` and ``--new-file``, the former names, still work (hidden, with a
note on stderr).
"""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Sequence
from typing import TYPE_CHECKING

from vbios_client._cli_context import setup_password, write
from vbios_client._cli_inputs import UsageError, read_secret_file
from vbios_client._cli_parser import if_match_option

if TYPE_CHECKING:
    from vbios_client._cli_context import Context

SETUP_PASSWORD_NAME = "SetupPassword"  # noqa: S105 (an attribute name)


def register(areas: argparse._SubParsersAction[argparse.ArgumentParser],
             leaf: Sequence[argparse.ArgumentParser]) -> None:
    commands = areas.add_parser("password", help="BIOS passwords", allow_abbrev=False
                                ).add_subparsers(dest="command", required=True,
                                                 metavar="COMMAND")
    text = "set, change or clear a password attribute"
    change = commands.add_parser("change", parents=list(leaf), help=text, description=text,
                                 allow_abbrev=False)
    change.set_defaults(run=change_password)
    if_match_option(change)
    change.add_argument("name", metavar="NAME",
                        help="SetupPassword (its current value: --password-file) or"
                             " PowerOnPassword")
    change.add_argument("--old-password-file", metavar="FILE",
                        help="file holding NAME's current value, when NAME is not"
                             " SetupPassword")
    change.add_argument("--new-password-file", metavar="FILE",
                        help="file holding the new password (else asked for twice)")
    change.add_argument("--clear", action="store_true", help="remove the password")
    change.add_argument("--old-file", help=argparse.SUPPRESS)
    change.add_argument("--new-file", help=argparse.SUPPRESS)


def change_password(ctx: Context) -> int:
    args, name = ctx.args, ctx.args.name
    if args.clear and (args.new_password_file or args.new_file):
        raise UsageError("--clear removes the password: give no new password file with it")
    old = _current(ctx, name)
    if args.clear:
        new = ""
    else:
        new = _new(ctx, name)
        if not new:
            raise UsageError("the new password is empty: use --clear to remove the password")
    return write(ctx, lambda pw: ctx.client.change_password(
        name, old or None, new, args.if_match, pw))


def _current(ctx: Context, name: str) -> str | None:
    """NAME's current value: for SetupPassword the setup password, else
    --old-password-file; asked for on a terminal when none is given."""
    args = ctx.args
    if args.old_file:
        instead = "--password-file" if name == SETUP_PASSWORD_NAME else "--old-password-file"
        ctx.note(f"--old-file is a former name: give {instead} FILE")
        return read_secret_file(args.old_file)
    if name == SETUP_PASSWORD_NAME:
        if args.old_password_file:
            raise UsageError("the current setup password goes in --password-file (or"
                             " VBIOS_SETUP_PASSWORD), as for every command")
        given = setup_password(args)
        label = "Current setup password"
    else:
        given = read_secret_file(args.old_password_file) if args.old_password_file else None
        label = f"Current {name}"
    if given is None and ctx.stdin.isatty():
        return getpass.getpass(f"{label} (empty if none): ")
    return given


def _new(ctx: Context, name: str) -> str:
    path = ctx.args.new_password_file
    if ctx.args.new_file:
        ctx.note("--new-file is a former name: give --new-password-file FILE")
        path = ctx.args.new_file
    if path:
        return read_secret_file(path)
    if not ctx.stdin.isatty():
        raise UsageError("no terminal to ask on: give --new-password-file FILE (or --clear)")
    first = getpass.getpass(f"New {name}: ")
    if getpass.getpass("Again: ") != first:
        raise UsageError("the two entries differ")
    return first
