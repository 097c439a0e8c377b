"""Cold start: `vbios serve` until the first successful guest call, with the TPM and without.

For each mode a home is initialized once (the development TPM, or --no-tpm) with
one guest domain; then, alternating modes, each run starts `vbios serve`, polls
GetAttributes over mutual TLS with the guest's bundle until it answers 200, and
stops the server by its pid. With the TPM, the time includes the measured launch
(hashing the installed package and configuration, resetting and extending PCR
23) and the policy-session unseal. Prints the medians and their ratio.

Usage: .venv/bin/python bench/coldstart.py [--runs N] [--workers W]
"""

from __future__ import annotations

import argparse
import http.client
import ssl
import statistics
import tempfile
import time
from pathlib import Path

from _shared import (  # bench/ is the script directory
    HEADERS,
    REQUEST,
    VBIOS,
    init_home,
    spawn_server,
    stop_server,
)

from bios_ws.tpm.devtpm import DevTpm

START_LIMIT = 60.0


def guest_context(bundle: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(bundle / "ca.pem"))
    context.load_cert_chain(str(bundle / "cert.pem"), str(bundle / "key.pem"))
    return context


def first_call_ok(port: int, context: ssl.SSLContext) -> bool:
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
    try:
        connection.request("POST", "/", body=REQUEST, headers=HEADERS)
        return connection.getresponse().status == 200
    except (OSError, ssl.SSLError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def one_start(home: Path, context: ssl.SSLContext, workers: int, log: Path) -> float:
    """Seconds from spawning `vbios serve` to the first 200 answer."""
    began = time.perf_counter()
    proc, port = spawn_server(
        [str(VBIOS), "serve", "--home", str(home), "--workers", str(workers)], log,
        START_LIMIT)
    try:
        while time.perf_counter() - began < START_LIMIT:
            if proc.poll() is not None:
                raise SystemExit(f"vbios serve exited with {proc.returncode}; see {log}")
            if first_call_ok(port, context):
                return time.perf_counter() - began
            time.sleep(0.01)
        raise SystemExit(f"vbios serve not answering after {START_LIMIT:.0f}s; see {log}")
    finally:
        stop_server(proc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="starts per mode (default 5)")
    parser.add_argument("--workers", type=int, default=1, help="server workers (default 1)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vbios-coldstart-") as tmp:
        work = Path(tmp)
        tpm_home, plain_home = work / "tpm", work / "plain"
        try:
            homes = {"tpm": (tpm_home, init_home(tpm_home)),
                     "no-tpm": (plain_home, init_home(plain_home, "--no-tpm"))}
            times: dict[str, list[float]] = {mode: [] for mode in homes}
            for _ in range(args.runs):
                for mode, (home, bundle) in homes.items():
                    times[mode].append(one_start(home, guest_context(bundle), args.workers,
                                                 work / f"{mode}.log"))
        finally:
            DevTpm(tpm_home / "tpm").stop()
    with_tpm, without = statistics.median(times["tpm"]), statistics.median(times["no-tpm"])
    print(f"cold start to first guest call, median of {args.runs}"
          f" ({args.workers} worker{'s' if args.workers > 1 else ''}):")
    print(f"  with the TPM (measure + extend PCR 23 + unseal): {with_tpm * 1000:8.1f} ms")
    print(f"  --no-tpm:                                        {without * 1000:8.1f} ms")
    print(f"  ratio TPM / no-TPM:                              {with_tpm / without:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
