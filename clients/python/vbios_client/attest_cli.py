"""`vbios-client attest` and `vbios-client host ...`: the guest checks the host it runs on.

    vbios-client attest [--json] [--pcrs 0-7] [--bank sha256] [--state FILE | --no-state]

``attest`` asks for a TPM quote over a fresh nonce and verifies it here; it
prints the verdict (JSON: ``{"trusted": bool, "failures": [...], ...}``) and
exits 1 when the host is not trusted. The TPM's counters and clock are
compared with the last authentic quote, remembered in a state file
(default ``$XDG_STATE_HOME/vbios-client/attest-clock.json``).

``host status|measurements|reference|diagnostics`` print what the host says
about itself: useful to see why, but the server's word only. ``host status``
exits 1 when the host says it is Untrusted, as ``vbios integrity`` does.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from vbios_client._cli_text import dump, utc_text_of
from vbios_client.integrity import BootMeasurements, IntegrityStatus

if TYPE_CHECKING:
    from vbios_client.attestation import Verdict
    from vbios_client.cli import Context

EXIT_OK, EXIT_UNTRUSTED = 0, 1
BANKS = ("sha1", "sha256")


def default_state_file() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "vbios-client" / "attest-clock.json"


def parse_pcrs(text: str) -> list[int]:
    """"0-7,23" -> [0, 1, ..., 7, 23]; ArgumentTypeError when malformed."""
    selected: list[int] = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            low, high = int(first), int(last) if dash else int(first)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected PCR numbers like 0-7,23: {text!r}"
                                             ) from None
        if not 0 <= low <= high <= 23:
            raise argparse.ArgumentTypeError(f"PCR numbers are 0 to 23: {text!r}")
        selected += range(low, high + 1)
    if len(set(selected)) != len(selected):
        raise argparse.ArgumentTypeError(f"a PCR is named twice: {text!r}")
    return selected


ATTEST_EXIT_CODES = ("exit status: 0 trusted (every check passed), 1 not trusted or a fault"
                     " of the server, 2 a usage error or an unusable state file, 3 the"
                     " server cannot be reached")
STATUS_EXIT_CODES = ("exit status: 0 Trusted, 1 Untrusted (as `vbios integrity`) or a fault"
                     " of the server, 2 a usage error, 3 the server cannot be reached")


def register(areas: argparse._SubParsersAction[argparse.ArgumentParser],
             leaf: Sequence[argparse.ArgumentParser]) -> None:
    text = "verify the host's boot integrity by a TPM quote (exit 1 when not trusted)"
    attest = areas.add_parser("attest", parents=list(leaf), help=text, description=text,
                              epilog=ATTEST_EXIT_CODES, allow_abbrev=False)
    attest.add_argument("--pcrs", type=parse_pcrs, metavar="LIST",
                        help="PCRs to quote, e.g. 0-7,23: 0-7 the host's boot, 23 the"
                             " vBIOS service's launch (default 0-7)")
    attest.add_argument("--bank", choices=BANKS, default="sha256")
    state = attest.add_mutually_exclusive_group()
    state.add_argument("--state", type=Path, metavar="FILE",
                       help="where the last quote's counters and clock are kept"
                            f" (default {default_state_file()})")
    state.add_argument("--no-state", action="store_true",
                       help="keep no state: counters and clock are not compared")
    attest.set_defaults(run=_attest)

    host = areas.add_parser("host", help="what the host says about its integrity",
                            allow_abbrev=False).add_subparsers(
        dest="command", required=True, metavar="COMMAND")
    for name, handler, help_text, epilog in (
        ("status", _status, "the host's integrity verdict, measured now (exit 1 when"
         " Untrusted)", STATUS_EXIT_CODES),
        ("measurements", _measurements, "PCR values and the event log (boot, then the"
         " service's launch on PCR 23)", None),
        ("reference", _reference, "the reference measurements (manifest JSON)", None),
        ("diagnostics", _diagnostics, "verdict, measurements and recent audit entries", None),
    ):
        sub = host.add_parser(name, parents=list(leaf), help=help_text,
                              description=help_text, epilog=epilog, allow_abbrev=False)
        sub.set_defaults(run=handler)


def _attest(ctx: Context) -> int:
    from vbios_client.attestation import ClockStore  # brings cryptography

    args = ctx.args
    store = None if args.no_state else ClockStore(args.state or default_state_file())
    verdict = ctx.client.attest(args.pcrs, args.bank, clock_store=store)
    if ctx.as_json:
        _json(ctx.out, verdict.to_dict())
    else:
        _verdict_text(ctx.out, verdict)
    return EXIT_OK if verdict.trusted else EXIT_UNTRUSTED


def _verdict_text(out: TextIO, verdict: Verdict) -> None:
    if verdict.trusted:
        out.write(f"trusted: every check passed ({', '.join(verdict.checks)})\n")
    else:
        out.write(f"NOT TRUSTED: {len(verdict.failures)} of {len(verdict.checks)} checks"
                  " failed\n")
        for failure in verdict.failures:
            out.write(f"  {failure.check}: {failure.detail}\n")
    for index, value in sorted(verdict.pcrs.items()):
        out.write(f"  PCR {index:2} {verdict.bank}: {value.hex()}\n")
    if verdict.clock is not None:
        clock = verdict.clock
        out.write(f"  TPM clock {clock.clock} ms, resets {clock.reset_count},"
                  f" restarts {clock.restart_count}\n")


def _status(ctx: Context) -> int:
    status = ctx.client.get_integrity_status()
    _status_out(ctx, status)
    return EXIT_OK if status.trusted else EXIT_UNTRUSTED


def _status_out(ctx: Context, status: IntegrityStatus) -> None:
    if ctx.as_json:
        _json(ctx.out, status.to_dict())
        return
    state = "Trusted" if status.trusted else "Untrusted"
    restricted = " (restricted mode: state changes refused)" if status.restricted else ""
    ctx.out.write(f"{state}{restricted}, checked {utc_text_of(status.checked_at)}\n")
    for finding in status.findings:
        where = f"PCR {finding.pcr}: " if finding.pcr is not None else ""
        ctx.out.write(f"  {finding.kind}: {where}{finding.message}\n")


def _measurements(ctx: Context) -> int:
    _measurements_out(ctx.out, ctx.client.get_boot_measurements(), as_json=ctx.as_json)
    return EXIT_OK


def _measurements_out(out: TextIO, found: BootMeasurements, *, as_json: bool) -> None:
    if as_json:
        _json(out, _measurements_dict(found))
        return
    for index, value in sorted(found.pcrs.items()):
        out.write(f"PCR {index:2} {found.bank}: {value.hex()}\n")
    out.write(f"{len(found.events)} events, event log {len(found.event_log)} bytes\n")


def _measurements_dict(found: BootMeasurements) -> dict[str, Any]:
    return {
        "bank": found.bank,
        "pcrs": {str(i): v.hex() for i, v in sorted(found.pcrs.items())},
        "events": [{"pcr": e.pcr, "type": e.type,
                    "digests": {b: d.hex() for b, d in e.digests.items()}}
                   for e in found.events],
    }


def _reference(ctx: Context) -> int:
    reference = ctx.client.get_reference_measurements()
    if reference is None:
        ctx.out.write("null\n" if ctx.as_json else "the host has no reference measurements\n")
        return EXIT_OK
    if ctx.as_json:
        ctx.out.write(reference.manifest.rstrip("\n") + "\n")
    else:
        ctx.out.write(f"version {reference.version}, set {utc_text_of(reference.updated_at)},"
                      f" digest {reference.digest}\n")
    return EXIT_OK


def _diagnostics(ctx: Context) -> int:
    found = ctx.client.collect_diagnostics()
    if ctx.as_json:
        measured = found.measurements
        _json(ctx.out, {
            "collected_at": found.collected_at, "status": found.status.to_dict(),
            "unavailable": found.unavailable,
            "measurements": _measurements_dict(measured) if measured is not None else None,
            "audit": [vars(entry) for entry in found.audit_entries],
        })
        return EXIT_OK
    _status_out(ctx, found.status)
    if found.measurements is not None:
        _measurements_out(ctx.out, found.measurements, as_json=False)
    elif found.unavailable:
        ctx.out.write(f"measurements unavailable: {found.unavailable}\n")
    for entry in found.audit_entries:
        ctx.out.write(f"audit {entry.seq} {utc_text_of(entry.time)} {entry.principal}"
                      f" {entry.operation} {entry.domain or '-'} {entry.outcome}\n")
    return EXIT_OK


def _json(out: TextIO, value: Any) -> None:
    dump(out, value)

