"""`vbios --help` and a mistyped command load none of the heavy libraries (a test of
imports, not of time): each command imports what it needs when it runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bios_ws.cli.admin import SERVER_NAMES_HELP
from bios_ws.pki import DEFAULT_SERVER_NAMES

HEAVY = ("sqlalchemy", "spyne", "cryptography", "lxml", "tpm2_pytss", "gunicorn", "zeep",
         "requests", "asn1crypto")
ROOT = Path(__file__).resolve().parents[2]

_PROBE = """
import contextlib, io, sys
from bios_ws.cli import main
with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()), \\
        contextlib.redirect_stderr(io.StringIO()):
    main(sys.argv[1:])
print(" ".join(m for m in {heavy!r} if m in sys.modules))
"""


@pytest.mark.parametrize("argv", [
    ["--help"],
    ["--version"],
    ["ak", "--help"],
    ["domain", "list", "--json", "--bogus"],  # a usage error printed as JSON
    ["domain", "--help"],
    ["domain", "create"],  # a required argument missing
    ["no-such-command"],
    ["audit", "show", "--since", "zero"],
    ["capsule", "--help"],
    ["capsule", "create", "--help"],
    ["capsule", "show"],  # the file missing
    ["firmware", "--help"],
    ["firmware", "trust", "add"],  # the certificate missing
])
def test_parsing_the_command_line_loads_no_heavy_library(argv: list[str]) -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE.format(heavy=HEAVY), *argv],
                          capture_output=True, text=True, cwd=ROOT, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []


def test_the_help_names_the_default_server_names() -> None:
    assert ", ".join(DEFAULT_SERVER_NAMES) == SERVER_NAMES_HELP
