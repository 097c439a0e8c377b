"""`vbios reference set|show` and `vbios integrity`: the host's reference measurements and verdict.

    vbios reference set --current            # this boot is the known-good one
    vbios reference set --from-log FILE      # a known-good boot's binary event log
    vbios reference set --manifest FILE      # a reference manifest (docs/reference-manifest.md)
    vbios reference show [--json]
    vbios integrity [--json]                 # measure now; exit 1 when Untrusted

Setting a reference is audited and takes effect at the servers' next check
(at most their --integrity-interval later, or at once through
SetReferenceMeasurements). `vbios integrity` records what it finds, so entering
or leaving restricted mode is audited even while no server runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from bios_ws.cli.eventlog import read_bounded_file
from bios_ws.cli.options import HOME_HELP, add_tpm_options, config_from_args
from bios_ws.cli.output import print_json, rfc3339
from bios_ws.domain.principal import Principal
from bios_ws.domain.reference import MAX_MANIFEST_BYTES
from bios_ws.errors import AdminError
from bios_ws.home import Home, resolve_home_path

if TYPE_CHECKING:
    from bios_ws.service.attestation import AttestationService
    from bios_ws.service.integrity import IntegrityStatus

__all__ = ["register"]

Subparsers = argparse._SubParsersAction
#: What --no-tpm means for these commands.
NO_TPM_MEASURING = ("read no TPM (as in a home created with --no-tpm): nothing is measured,"
                    " so integrity is Untrusted and `reference set --current` has no log")


def register(commands: Subparsers[argparse.ArgumentParser]) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", metavar="DIR", help=HOME_HELP)
    add_tpm_options(common, for_init=False, no_tpm_help=NO_TPM_MEASURING)
    common.add_argument("--event-log", metavar="FILE", type=Path,
                        help="the platform's boot event log (default: the development TPM's,"
                             " or the kernel's for a device TPM)")

    reference = commands.add_parser("reference", help="the host's reference measurements")
    sub = reference.add_subparsers(dest="reference_command", required=True, metavar="COMMAND")
    set_ = sub.add_parser("set", parents=[common], help="set the reference (audited)")
    source = set_.add_mutually_exclusive_group(required=True)
    source.add_argument("--current", action="store_true",
                        help="take this host's current boot event log as the known-good boot")
    source.add_argument("--from-log", metavar="FILE", type=Path,
                        help="a known-good boot's binary event log")
    source.add_argument("--manifest", metavar="FILE", type=Path,
                        help="a reference manifest (JSON, docs/reference-manifest.md)")
    set_.add_argument("--description", metavar="TEXT", help="what this reference is")
    set_.set_defaults(run=run_reference_set)
    show = sub.add_parser("show", parents=[common], help="print the reference")
    show.add_argument("--json", action="store_true", help="print the manifest (JSON)")
    show.set_defaults(run=run_reference_show)

    integrity = commands.add_parser(
        "integrity", parents=[common],
        help="measure now and compare with the reference (exit 1 when Untrusted)")
    integrity.add_argument("--json", action="store_true", help="print JSON")
    integrity.set_defaults(run=run_integrity)


def _with_attestation(args: argparse.Namespace, action: Callable[[AttestationService], int]
                      ) -> int:
    from bios_ws.bootstrap import bootstrap
    from bios_ws.service.attestation import AttestationService

    home = Home.open(resolve_home_path(args.home))
    with bootstrap(config_from_args(args, home)) as app:
        return action(app.use(AttestationService))


def run_reference_set(args: argparse.Namespace) -> int:
    from bios_ws.service.attestation import reference_from

    def action(attestation: AttestationService) -> int:
        if args.current:
            log = attestation.current_event_log()
            manifest = None
        elif args.from_log is not None:
            log, manifest = read_bounded_file(args.from_log), None
        else:
            log = None
            manifest = read_bounded_file(args.manifest, MAX_MANIFEST_BYTES, "manifest").decode(
                "utf-8", errors="replace")
        version, reference, status = attestation.set_reference(
            Principal.admin("vbios-cli"), lambda: reference_from(log, manifest, args.description))
        print(f"reference measurements set (version {version}, {len(reference.pcr_indexes)}"
              f" PCRs, digest {reference.digest()})")
        print(_status_line(status))
        return 0

    return _with_attestation(args, action)


def run_reference_show(args: argparse.Namespace) -> int:
    def action(attestation: AttestationService) -> int:
        view = attestation.reference(Principal.admin("vbios-cli"))
        if view is None:
            raise AdminError("no reference measurements are set: vbios reference set --current")
        if args.json:
            print(view.reference.to_json())
            return 0
        ref = view.reference
        print(f"version {view.version}, set {rfc3339(view.updated_at)}, digest {ref.digest()}")
        print(f"source: {ref.source or '-'}; description: {ref.description or '-'}")
        for pcr in ref.pcr_indexes:
            events = ref.pcrs[pcr]
            print(f"PCR {pcr}: {len(events)} events")
            for number, event in enumerate(events):
                choices = " | ".join(
                    ",".join(f"{bank}:{digest.hex()[:16]}" for bank, digest in sorted(alt.items()))
                    for alt in event.alternatives)
                print(f"  {number}: {event.type_name} {choices}")
        return 0

    return _with_attestation(args, action)


def run_integrity(args: argparse.Namespace) -> int:
    def action(attestation: AttestationService) -> int:
        status = attestation.integrity(Principal.admin("vbios-cli"))
        if args.json:
            print_json({**status.verdict.to_dict(), "restricted": status.restricted,
                        "checked_at": rfc3339(status.checked_at)})
        else:
            print(_status_line(status))
            for finding in status.verdict.findings:
                where = f"PCR {finding.pcr}: " if finding.pcr is not None else ""
                print(f"  {finding.kind}: {where}{finding.message}")
        return 0 if status.trusted else 1

    return _with_attestation(args, action)


def _status_line(status: IntegrityStatus) -> str:
    if status.trusted:
        return "integrity: Trusted"
    restricted = " (restricted mode: writes refused)" if status.restricted else ""
    return f"integrity: Untrusted{restricted}"
