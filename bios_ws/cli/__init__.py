"""The `vbios` command: the host admin's tool.

Each area registers its subcommands from its own module. Refusals (every
``VbiosError``) print one line on stderr and exit 1; no traceback reaches the
admin. A command given --json also prints its refusal (and a usage error) as JSON
on stdout (``EPILOG`` says so in `vbios --help`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from bios_ws.cli.hidden import note_for
from bios_ws.cli.output import print_error_json
from bios_ws.cli.parsing import VbiosParser, argv_or_sys, json_usage_errors, parse, wants_json
from bios_ws.errors import VbiosError

EPILOG = """\
exit status:
  0    success
  1    refused or failed (one line on stderr); `vbios integrity`: Untrusted
  2    usage error (the command line is wrong)
  130  interrupted (Ctrl-C)

--json: a command given --json prints only JSON on stdout (indented by two spaces;
times in RFC 3339 UTC, e.g. 2026-11-30T19:10:13Z). When it fails, stdout holds
{"error": {"code": CODE, "message": TEXT}} instead (CODE: the error's name, e.g.
DomainNotFound, or UsageError), the exit status is the same, and stderr says it too.
"""


def version() -> str:
    """The installed bios-ws version (no heavy import)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed_version

    try:
        return installed_version("bios-ws")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    from bios_ws.cli import (
        admin,
        attest,
        capsule,
        cert,
        domain,
        eventlog,
        firmware,
        host,
        integrity,
        launch,
        registry,
        routing,
        serve,
        store,
        tpm,
    )

    parser: argparse.ArgumentParser = VbiosParser(
        prog="vbios", description=__doc__.splitlines()[0], epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"vbios {version()}",
                        help="print the version of vbios and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    admin.register(commands)
    domain.register(commands)
    cert.register(commands)
    serve.register(commands)
    launch.register(commands)
    tpm.register(commands)
    attest.register(commands)
    eventlog.register(commands)
    integrity.register(commands)
    capsule.register(commands)
    firmware.register(commands)
    registry.register(commands)
    store.register(commands)
    host.register(commands)
    routing.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = argv_or_sys(argv)
    as_json = wants_json(words)
    parser = build_parser()
    with json_usage_errors(as_json):
        args = parse(parser, words)
    note = note_for(args)
    if note is not None:
        print(note, file=sys.stderr, flush=True)
    try:
        status: int = args.run(args)
    except VbiosError as exc:
        if as_json:
            print_error_json(type(exc).__name__, exc.message)
        print(f"vbios: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # the reader went away (`vbios measure | head`): stop quietly, and keep the
        # interpreter's final flush of stdout from raising again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return status


if __name__ == "__main__":
    raise SystemExit(main())
