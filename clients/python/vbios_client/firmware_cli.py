"""`vbios-client firmware`: this guest's firmware, its updates and their history.

    vbios-client firmware inventory [--json]
    vbios-client firmware update FILE [--apply-time OnReset|Immediate] [--encrypt]
                                      [--wait [--timeout S]] [--json]
    vbios-client firmware job [ID] [--json]
    vbios-client firmware history [--json]

``update`` uploads the capsule FILE in chunks (resumed by itself after a dropped
connection), makes it an update job and prints the job; with ``--wait`` it follows the
job until it ends (an OnReset job ends after the domain's next reset). A bar shows the
upload and the job on stderr when stderr is a terminal (otherwise one line per state
of the job); stdout holds the result alone. ``--timeout`` after ``update`` bounds the
wait (default 600 seconds); the timeout of each call is the global ``--timeout``
given before the command. Exit status as for every command, and 1 when the job ended
Failed or RolledBack or the wait gave up. Times are RFC 3339, UTC.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from vbios_client import _firmware_output as show
from vbios_client._cli_inputs import UsageError
from vbios_client._cli_parser import positive_seconds
from vbios_client._cli_text import escape_controls
from vbios_client.exceptions import FirmwareJobTimeout
from vbios_client.models import APPLY_TIMES, FirmwareJob

if TYPE_CHECKING:
    from vbios_client.cli import Context

EXIT_OK, EXIT_FAILED = 0, 1
#: The largest capsule the vBIOS takes; a larger file is not read.
MAX_CAPSULE_FILE_BYTES = 32 * 1024 * 1024
DEFAULT_WAIT = 600.0


def register(areas: argparse._SubParsersAction[argparse.ArgumentParser],
             leaf: Sequence[argparse.ArgumentParser],
             leaf_without_timeout: Sequence[argparse.ArgumentParser]) -> None:
    """The commands; ``update`` takes the global options but --timeout, its own."""
    commands = areas.add_parser("firmware", help="firmware: inventory, updates, history",
                                allow_abbrev=False).add_subparsers(
        dest="command", required=True, metavar="COMMAND")

    def command(name: str, text: str, parents: Sequence[argparse.ArgumentParser] = leaf
                ) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=list(parents), help=text, description=text,
                                   allow_abbrev=False)

    command("inventory", "the domain's firmware: version, floor, last attempt, slot"
            ).set_defaults(run=_inventory)
    update = command("update", "upload a signed capsule and make it an update job",
                     leaf_without_timeout)
    update.add_argument("file", type=Path, metavar="FILE", help="the capsule")
    update.add_argument("--apply-time", choices=APPLY_TIMES, default="OnReset",
                        help="at the domain's next reset (default), or at once (the vBIOS"
                             " restarts the domain)")
    update.add_argument("--encrypt", action="store_true",
                        help="send the capsule encrypted with one-time keys")
    update.add_argument("--wait", action="store_true",
                        help="follow the job until it ends (exit 1 if Failed or RolledBack)")
    update.add_argument("--timeout", dest="wait_timeout", type=positive_seconds, metavar="SECONDS",
                        help=f"with --wait: give up after SECONDS (default {DEFAULT_WAIT:g});"
                             " the per-call timeout is --timeout before the command")
    update.set_defaults(run=_update)
    job = command("job", "one update job (default: the newest)")
    job.add_argument("job_id", nargs="?", metavar="ID")
    job.set_defaults(run=_job)
    command("history", "every update attempt, newest first").set_defaults(run=_history)


def read_capsule(path: Path) -> bytes:
    """The capsule file's bytes (bounded); UsageError when it cannot be read."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CAPSULE_FILE_BYTES + 1)
    except OSError as exc:
        raise UsageError(f"cannot read capsule {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_CAPSULE_FILE_BYTES:
        raise UsageError(f"capsule {path} is larger than {MAX_CAPSULE_FILE_BYTES} bytes")
    if not data:
        raise UsageError(f"capsule {path} is empty")
    return data


def _inventory(ctx: Context) -> int:
    show.inventory(ctx.out, ctx.client.firmware_inventory(), as_json=ctx.as_json)
    return EXIT_OK


def _job(ctx: Context) -> int:
    show.job(ctx.out, ctx.client.firmware_job(ctx.args.job_id), as_json=ctx.as_json)
    return EXIT_OK


def _history(ctx: Context) -> int:
    show.history(ctx.out, ctx.client.firmware_history(), as_json=ctx.as_json)
    return EXIT_OK


def _update(ctx: Context) -> int:
    args = ctx.args
    if args.wait_timeout is not None and not args.wait:
        raise UsageError("--timeout after update bounds --wait: give --wait too (the"
                         " per-call timeout goes before the command)")
    capsule = read_capsule(args.file)
    progress = show.Progress(ctx.err)
    try:
        job = ctx.client.update_firmware(capsule, apply_time=args.apply_time,
                                         encrypt=args.encrypt, progress=progress.upload)
    finally:
        progress.done()
    if args.wait and not job.finished:
        try:
            job = ctx.client.wait_for_firmware_job(
                job.job_id, timeout=args.wait_timeout or DEFAULT_WAIT, progress=progress.job)
        except FirmwareJobTimeout as exc:
            progress.done()
            show.job(ctx.out, exc.job, as_json=ctx.as_json)
            ctx.err.write(escape_controls(
                f"vbios-client: {_one_line(str(exc))} (it goes on: vbios-client firmware job"
                f" {job.job_id})") + "\n")
            return EXIT_FAILED
        finally:
            progress.done()
    show.job(ctx.out, job, as_json=ctx.as_json)
    return _ended(ctx, job)


def _ended(ctx: Context, job: FirmwareJob) -> int:
    if job.state in ("Failed", "RolledBack"):
        ctx.err.write(escape_controls(
            f"vbios-client: firmware job {job.job_id} ended {job.state}:"
            f" {_one_line(job.message) or job.status or 'no reason given'}") + "\n")
        return EXIT_FAILED
    return EXIT_OK


def _one_line(text: str) -> str:
    return " ".join(text.split())
