"""The `vbios` command: the host admin's tool.

Each area registers its subcommands from its own module. Refusals (every
``VbiosError``) print one line on stderr and exit 1; no traceback reaches the
admin.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from bios_ws.errors import VbiosError


def build_parser() -> argparse.ArgumentParser:
    from bios_ws.cli import (
        admin,
        attest,
        capsule,
        cert,
        domain,
        eventlog,
        firmware,
        integrity,
        launch,
        registry,
        serve,
        tpm,
    )

    parser = argparse.ArgumentParser(prog="vbios", description=__doc__.splitlines()[0])
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except VbiosError as exc:
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
