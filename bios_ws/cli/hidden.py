"""Old command names that keep working, unlisted: `vbios attest` is now `vbios ak`.

``add_hidden_alias`` registers a subcommand that ``vbios --help`` does not list (argparse
lists only the subcommands given a help); it parses and runs as the new one, and
``bios_ws.cli.main`` prints ``note_for`` the parsed arguments, one line on stderr naming
the new form, before it runs.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_hidden_alias", "is_hidden_alias", "note_for"]

Subparsers = argparse._SubParsersAction
_NOTE = "vbios_alias_note"


def add_hidden_alias(commands: Subparsers[argparse.ArgumentParser], name: str,
                     new_form: str, *, description: str, **kwargs: Any
                     ) -> argparse.ArgumentParser:
    """The unlisted subcommand ``name`` of ``commands``, now called ``new_form`` (the whole
    command, e.g. ``vbios ak``); the caller adds its arguments as to the new one."""
    kwargs.pop("help", None)  # a help would list it
    parser = commands.add_parser(name, description=description, **kwargs)
    parser.set_defaults(**{_NOTE: f"vbios: note: `{parser.prog}` is now `{new_form}`"})
    return parser


def is_hidden_alias(parser: argparse.ArgumentParser) -> bool:
    return parser.get_default(_NOTE) is not None


def note_for(args: argparse.Namespace) -> str | None:
    """The line naming the new form, if ``args`` were parsed by a hidden alias."""
    note: str | None = getattr(args, _NOTE, None)
    return note
