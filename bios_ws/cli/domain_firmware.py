"""`vbios domain firmware NAME inventory|update|job|history`: a domain's firmware, for the
host admin, in-process on the home's store and machines (a server need not run).

``update FILE`` submits a capsule as the admin (the same use case a guest's upload
reaches); ``--wait`` shows the job's progress until it ends (an OnReset update ends at
the domain's next reset).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bios_ws.cli.output import json_text, print_json, rfc3339
from bios_ws.domain.firmware_job import ApplyTime, FirmwareJob
from bios_ws.domain.principal import Principal, check_domain_id
from bios_ws.errors import AdminError

if TYPE_CHECKING:  # imported where used: `vbios --help` loads no crypto, database or SOAP
    from bios_ws.bootstrap import App
    from bios_ws.domain.firmware_update import FirmwareInventory

Subparsers = argparse._SubParsersAction
Action = Callable[["App", argparse.Namespace], int]
ADMIN = Principal.admin()
#: How often --wait looks at the job.
POLL_SECONDS = 0.5
BAR_WIDTH = 30


def register(sub: Subparsers[argparse.ArgumentParser], common: argparse.ArgumentParser,
             run_app: Callable[[argparse.Namespace, Action], int]) -> None:
    # NAME comes before the command: `vbios domain firmware vm1 history`
    """Add ``firmware`` to ``vbios domain``."""
    as_json = argparse.ArgumentParser(add_help=False, parents=[common])
    as_json.add_argument("--json", action="store_true", help="print JSON")
    firmware = sub.add_parser("firmware",
                              help="a domain's firmware: inventory, updates, jobs, history",
                              description="A domain's firmware (ESRT-style inventory), its"
                                          " updates by signed UEFI capsules, and their jobs.")
    firmware.add_argument("name", metavar="NAME", help="the domain")
    fw_sub = firmware.add_subparsers(dest="firmware_command", required=True, metavar="COMMAND")
    fw_sub.add_parser("inventory", parents=[as_json],
                      help="firmware class, versions, last attempt, active slot",
                      description="The domain's firmware as an ESRT lists it."
                      ).set_defaults(run=lambda args: run_app(args, _inventory))
    update = fw_sub.add_parser("update", parents=[as_json], help="submit a signed capsule",
                               description="Submit a signed UEFI capsule as an update of"
                                           " the domain's firmware.")
    update.add_argument("capsule", metavar="FILE", type=Path, help="the capsule")
    update.add_argument("--apply-time", choices=[a.value for a in ApplyTime],
                        default=ApplyTime.ON_RESET.value,
                        help="at the next reset (default) or at once (the machine restarts)")
    update.add_argument("--wait", action="store_true",
                        help="show the job's progress until it ends")
    update.add_argument("--timeout", type=float, default=600.0, metavar="SECONDS",
                        help="how long --wait waits (default %(default)s)")
    update.set_defaults(run=lambda args: run_app(args, _update))
    job = fw_sub.add_parser("job", parents=[as_json], help="one update job (default: the"
                            " newest)", description="One firmware update job of the domain.")
    job.add_argument("job_id", metavar="ID", nargs="?", help="the job (default: the newest)")
    job.set_defaults(run=lambda args: run_app(args, _job))
    fw_sub.add_parser("history", parents=[as_json], help="every update attempt, newest first",
                      description="Every firmware update attempt of the domain: versions,"
                                  " times, outcome and signer."
                      ).set_defaults(run=lambda args: run_app(args, _history))


def _service(app: App) -> Any:
    from bios_ws.service.firmware_update import FirmwareUpdateService

    return app.use(FirmwareUpdateService)


def _inventory(app: App, args: argparse.Namespace) -> int:
    inventory = _service(app).inventory(ADMIN, check_domain_id(args.name))
    if args.json:
        print_json(inventory_json(inventory))
        return 0
    for entry in inventory_json(inventory):
        for key, value in entry.items():
            print(f"{key:<26} {value}")
    return 0


def _update(app: App, args: argparse.Namespace) -> int:
    from bios_ws.domain.firmware_upload import MAX_CAPSULE_BYTES
    from bios_ws.service.firmware_update import Submission

    name = check_domain_id(args.name)
    try:
        with args.capsule.open("rb") as source:
            data = source.read(MAX_CAPSULE_BYTES + 1)
    except OSError as exc:
        raise AdminError(f"cannot read the capsule {args.capsule}: {exc.strerror or exc}"
                         ) from None
    job = _service(app).submit(Submission(ADMIN, name, data, ApplyTime(args.apply_time)))
    if args.wait:
        job = wait_for(lambda: _service(app).job(ADMIN, job.job_id), args.timeout,
                       quiet=args.json)
    if args.json:
        print_json(job_json(job))
    else:
        print(describe_job(job))
    return 0 if job.status is None or job.status == 0 else 1


def _job(app: App, args: argparse.Namespace) -> int:
    name = check_domain_id(args.name)
    job = _service(app).job(ADMIN, args.job_id, domain_id=None if args.job_id else name)
    if job.domain_id != name:
        raise AdminError(f"firmware job {job.job_id} is of domain {job.domain_id}, not {name}")
    print(json_text(job_json(job)) if args.json else describe_job(job))
    return 0


def _history(app: App, args: argparse.Namespace) -> int:
    jobs = _service(app).history(ADMIN, check_domain_id(args.name))
    if args.json:
        print_json([job_json(job) for job in jobs])
        return 0
    if not jobs:
        print("no firmware update attempts")
        return 0
    print(f"{'CREATED':<20}  {'STATE':<10}  {'VERSION':<9}  {'STATUS':<22}  SIGNER")
    for job in jobs:
        versions = f"{_text(job.from_version)}->{_text(job.fw_version)}"
        status = "" if job.status is None else job.status.name
        print(f"{rfc3339(job.created_at):<20}  {job.state.value:<10}  {versions:<9}"
              f"  {status:<22}  {job.signer or '-'}")
    return 0


def wait_for(read: Callable[[], FirmwareJob], timeout: float, *, quiet: bool = False
             ) -> FirmwareJob:
    """Poll the job until it ends, drawing a progress bar on stderr; AdminError on timeout."""
    deadline = time.monotonic() + timeout
    job = read()
    while not job.finished:
        if not quiet:
            sys.stderr.write("\r" + progress_bar(job))
            sys.stderr.flush()
        if time.monotonic() >= deadline:
            raise AdminError(f"firmware job {job.job_id} is still {job.state.value} after"
                             f" {timeout:g} s")
        time.sleep(POLL_SECONDS)
        job = read()
    if not quiet:
        sys.stderr.write("\r" + progress_bar(job) + "\n")
    return job


def progress_bar(job: FirmwareJob) -> str:
    done = BAR_WIDTH * job.percent_complete // 100
    return f"[{'#' * done}{'-' * (BAR_WIDTH - done)}] {job.percent_complete:3d}% {job.state}"


def describe_job(job: FirmwareJob) -> str:
    status = "" if job.status is None else f" ({job.status.name})"
    return (f"firmware job {job.job_id}: {job.state.value}{status},"
            f" {job.percent_complete}%: {job.message}")


def inventory_json(inventory: FirmwareInventory) -> list[dict[str, Any]]:
    from bios_ws.domain.firmware_update import bios_version

    return [{"firmware_class": str(e.firmware_class), "fw_version": e.fw_version,
             "lowest_supported_version": e.lowest_supported_version,
             "last_attempt_version": e.last_attempt_version,
             "last_attempt_status": e.last_attempt_status.name,
             "last_attempt_status_code": int(e.last_attempt_status),
             "active_slot": e.active_slot.value, "bios_version": bios_version(e.fw_version)}
            for e in inventory]


def job_json(job: FirmwareJob) -> dict[str, Any]:
    return {"job_id": job.job_id, "domain": job.domain_id, "state": job.state.value,
            "percent_complete": job.percent_complete, "apply_time": job.apply_time.value,
            "firmware_class": None if job.firmware_class is None else str(job.firmware_class),
            "fw_version": job.fw_version, "from_version": job.from_version,
            "lowest_supported_version": job.lowest_supported_version,
            "monotonic_count": job.monotonic_count,
            "slot": None if job.slot is None else job.slot.value,
            "status": None if job.status is None else job.status.name,
            "status_code": None if job.status is None else int(job.status),
            "message": job.message, "signer": job.signer or None,
            "requested_by": job.principal, "capsule_sha256": job.capsule_sha256,
            "created_at": rfc3339(job.created_at), "updated_at": rfc3339(job.updated_at)}


def _text(value: int | None) -> str:
    return "?" if value is None else str(value)
