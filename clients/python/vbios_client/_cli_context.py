"""What every vbios-client command runs with: the client, its arguments and streams, the
setup password (a file or VBIOS_SETUP_PASSWORD, never argv) and how a write carries it."""

from __future__ import annotations

import argparse
import getpass
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from vbios_client import _output
from vbios_client._cli_inputs import read_secret_file
from vbios_client.exceptions import PasswordRequired

if TYPE_CHECKING:
    from vbios_client.client import BiosClient

EXIT_OK = 0


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

    def note(self, text: str) -> None:
        """A line on stderr for the person at the terminal."""
        self.err.write(f"vbios-client: note: {text}\n")


Handler = Callable[[Context], int]


def setup_password(args: argparse.Namespace) -> str | None:
    """The setup password: --password-file, else VBIOS_SETUP_PASSWORD, else None."""
    path = getattr(args, "password_file", None)
    if path:
        return read_secret_file(path)
    return os.environ.get("VBIOS_SETUP_PASSWORD") or None


def write(ctx: Context, call: Callable[[str | None], int]) -> int:
    """Run a write with the setup password; prompt once if the service asks and we can."""
    password = setup_password(ctx.args)
    try:
        new_version = call(password)
    except PasswordRequired as exc:
        if password is not None or exc.attribute or not ctx.stdin.isatty():
            raise
        new_version = call(getpass.getpass("Setup password: "))
    _output.version(ctx.out, new_version, as_json=ctx.as_json)
    return EXIT_OK
