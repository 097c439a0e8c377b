"""`vbios measure` and `vbios tpm reseal`: the measured launch, by hand.

`vbios measure` prints the service digest a `vbios serve` of this home would
extend into PCR 23, with the files behind it. `vbios tpm reseal` seals the key
passphrases again to the present boot and service, after an intended change,
and tells what changed (see ``bios_ws.launch.reseal``). The older top-level
name `vbios reseal` still works, hidden from `vbios --help`, and says the new one.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from bios_ws.cli.hidden import add_hidden_alias
from bios_ws.cli.options import add_home, chosen_tpm
from bios_ws.cli.output import print_json
from bios_ws.errors import AdminError
from bios_ws.home import Home, resolve_home_path
from bios_ws.tpm.port import SERVICE_PCR

Subparsers = argparse._SubParsersAction
_MAX_CODE_CHARS = 256


def register(commands: Subparsers[argparse.ArgumentParser]) -> None:
    measure = commands.add_parser(
        "measure", help="print the service digest (PCR 23 measurement) and its file list")
    add_home(measure)
    measure.add_argument("--json", action="store_true", help="print JSON")
    measure.add_argument("--package-root", metavar="DIR", help=argparse.SUPPRESS)
    measure.set_defaults(run=run_measure)
    old_name = add_hidden_alias(commands, "reseal", "vbios tpm reseal", description=RESEAL_HELP)
    _reseal_arguments(old_name)
    old_name.set_defaults(run=run_reseal)


RESEAL_HELP = "seal the key passphrases again to the present boot and service"


def register_reseal(subcommands: Subparsers[argparse.ArgumentParser]) -> None:
    """Add `reseal` to the `vbios tpm` group (its one documented name)."""
    reseal = subcommands.add_parser("reseal", help=RESEAL_HELP, description=RESEAL_HELP)
    _reseal_arguments(reseal)
    reseal.set_defaults(run=run_reseal)


def _reseal_arguments(reseal: argparse.ArgumentParser) -> None:
    add_home(reseal)
    reseal.add_argument("--tpm", metavar="TCTI",
                        help="TPM to use (default: $VBIOS_TPM, else the home's)")
    reseal.add_argument("--recovery-code-stdin", action="store_true",
                        help="read the recovery code printed by vbios init from stdin"
                             " (needed when the boot PCRs changed)")
    reseal.set_defaults(no_tpm=False)


def run_measure(args: argparse.Namespace) -> int:
    from bios_ws.launch.measure import expected_service_pcr, measure

    home = Home.open(resolve_home_path(args.home))
    root = Path(args.package_root).resolve() if args.package_root else None
    measurement = measure(home, root)
    if args.json:
        print_json(measurement.to_json_obj())
        return 0
    print(f"service digest: {measurement.digest.hex()}")
    print(f"PCR {SERVICE_PCR} after launch (sha256): "
          f"{expected_service_pcr(measurement.digest).hex()}")
    print(f"measured entries: {len(measurement.entries)}")
    for name, value in measurement.entries:
        print(f"{value.hex()}  {name}")
    return 0


def run_reseal(args: argparse.Namespace) -> int:
    from bios_ws.launch.reseal import reseal
    from bios_ws.launch.sealing import LaunchContext

    home = Home.open(resolve_home_path(args.home))
    if not home.uses_tpm:
        raise AdminError(f"{home.path}: this home has no TPM (created with --no-tpm)")
    code = _read_code() if args.recovery_code_stdin else None
    report = reseal(LaunchContext(home, chosen_tpm(args)), code)
    how = {
        "unchanged": "the TPM released them under the sealed policy",
        "service-update": "the boot is unchanged; the TPM released them under the sealed"
                          " service measurement",
        "recovery-code": "recovered with the recovery code",
    }[report.method]
    print(f"resealed the key passphrases of {home.path} ({how})")
    if report.changes:
        print("what changed since the last sealing:")
        for line in report.changes:
            print(f"  {line}")
    else:
        print("nothing changed since the last sealing")
    print(f"sealed to PCRs 0-7 and {SERVICE_PCR} (sha256);"
          f" service digest {report.state.service_digest.hex()}")
    return 0


def _read_code() -> str:
    if sys.stdin.isatty():
        return getpass.getpass("recovery code: ")
    code = sys.stdin.readline(_MAX_CODE_CHARS).strip()
    if not code:
        raise AdminError("no recovery code on stdin")
    return code
