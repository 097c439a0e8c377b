"""Attestation: a guest's verified quote round trip, against a bare in-process TPM quote.

In one process, on one fresh home with the development TPM (swtpm) and one
guest domain, with `vbios serve` (1 worker) on a free loopback port:
  - bare quote: ``open_tpm(tcti).quote(nonce, PCRs 0-7, sha256)`` in a loop on
    one open TPM context, and open + quote + close per call (what the server does
    per request, bios_ws/tpm/access.py PerUseTpm);
  - round trip: ``BiosClient.attest()``, from the guest's fresh nonce through
    GetQuote over mutual TLS to its own verified verdict (signature, AK
    certificate chain, nonce, PCR digest, event-log replay, counters, clock);
    every verdict must be trusted, or the benchmark stops with the failures.
swtpm serves one connection at a time, so each round runs the bare loops with
the server idle and closes the TPM context before the guest calls. Prints the
median round of each and the ratios round trip / bare quote.
tpm2-tss's swtpm TCTI connects anew for every TPM command (about 5 per quote, 8
with open and close), each leaving a loopback port in TIME_WAIT for a minute:
tens of thousands of calls in a minute exhaust the ephemeral ports.

Usage: .venv/bin/python bench/quote.py [--calls N] [--rounds R]
"""

from __future__ import annotations

import argparse
import secrets
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from _shared import (  # bench/ is the script directory
    VBIOS,
    init_home,
    spawn_server,
    stop_server,
    timed,
)
from vbios_client import BiosClient
from vbios_client.exceptions import TransportError

from bios_ws.tpm.devtpm import DevTpm
from bios_ws.tpm.esapi import open_tpm
from bios_ws.tpm.port import Tpm

PCRS = tuple(range(8))
BANK = "sha256"
START_LIMIT = 60.0
WARM_UP_CALLS = 10


def wait_ready(client: BiosClient, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until the server answers GetAttributes (it binds after enrolling the AK)."""
    deadline = time.monotonic() + START_LIMIT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"vbios serve exited with {proc.returncode}:\n{tail(log)}")
        try:
            client.get_attributes()
            return
        except TransportError:
            time.sleep(0.05)
    raise SystemExit(f"vbios serve not answering after {START_LIMIT:.0f}s:\n{tail(log)}")


def tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


def quote_on(tpm: Tpm) -> None:
    tpm.quote(secrets.token_bytes(32), PCRS, BANK)


def open_quote_close(tcti: str) -> None:
    tpm = open_tpm(tcti)
    try:
        quote_on(tpm)
    finally:
        tpm.close()


def bare_round(tcti: str, calls: int) -> tuple[float, float]:
    """Seconds for ``calls`` quotes on one connection, then for ``calls`` open+quote+close."""
    tpm = open_tpm(tcti)
    try:
        timed(lambda: quote_on(tpm), WARM_UP_CALLS)
        kept_open = timed(lambda: quote_on(tpm), calls)
    finally:
        tpm.close()  # nothing of ours may talk to swtpm while the server does
    per_use = timed(lambda: open_quote_close(tcti), calls)
    return kept_open, per_use


def attest_trusted(client: BiosClient) -> None:
    verdict = client.attest(PCRS, BANK)
    if not verdict.trusted:
        failures = "; ".join(f"{f.check}: {f.detail}" for f in verdict.failures)
        raise SystemExit(f"attestation verdict NOT trusted: {failures}")


def run(calls: int, rounds: int, work: Path) -> dict[str, list[float]]:
    """Seconds per round for each target."""
    home = work / "home"
    log = work / "serve.log"
    spent: dict[str, list[float]] = {"open": [], "per-use": [], "attest": []}
    try:
        bundle = init_home(home)
        tcti = DevTpm(home / "tpm").status().tcti
        if tcti is None:
            raise SystemExit("the development TPM is not running after vbios init")
        proc, port = spawn_server(
            [str(VBIOS), "serve", "--home", str(home), "--workers", "1"], log)
        try:
            with BiosClient.from_bundle(f"https://127.0.0.1:{port}/", bundle) as client:
                wait_ready(client, proc, log)
                for _ in range(rounds):
                    kept_open, per_use = bare_round(tcti, calls)
                    spent["open"].append(kept_open)
                    spent["per-use"].append(per_use)
                    timed(lambda: attest_trusted(client), WARM_UP_CALLS)
                    spent["attest"].append(timed(lambda: attest_trusted(client), calls))
        finally:
            stop_server(proc)
    finally:
        DevTpm(home / "tpm").stop()
    return spent


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
    return int(text)


def exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # so that the finally blocks stop the server and swtpm


def main() -> int:
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=positive, default=200, help="calls per round and target")
    parser.add_argument("--rounds", type=positive, default=5, help="rounds (the median is shown)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vbios-quote-") as tmp:
        spent = run(args.calls, args.rounds, Path(tmp))
    seconds = {name: statistics.median(times) for name, times in spent.items()}
    ms = {name: total * 1000 / args.calls for name, total in seconds.items()}
    print(f"TPM quote of PCRs 0-7 ({BANK}), development swtpm, 1 server worker;"
          f" median of {args.rounds} rounds of {args.calls} calls")
    labels = {"open": "bare quote, one TPM context kept open:",
              "per-use": "bare quote, open+quote+close per call:",
              "attest": "guest attest(), verified and trusted: "}
    for name, label in labels.items():
        print(f"  {label} {1000 / ms[name]:8.1f} calls/s  {ms[name]:7.2f} ms/call")
    ratios = {"bare quote (context kept open):": ms["attest"] / ms["open"],
              "open+quote+close:              ": ms["attest"] / ms["per-use"]}
    for label, ratio in ratios.items():
        print(f"  ratio round trip / {label} {ratio:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
