"""Round trip of GetAttributes over mutual TLS with keep-alive, against a baseline.

Three servers are not compared across runs: in one process, with one HTTP
session each, the same GetAttributes request bytes are posted in turn to
  - the vBIOS SOAP endpoint (`vbios serve`), and
  - a minimal echo WSGI app answering a response of the same size, behind the
    same front, TLS context, workers and threads (bench/echo_server.py);
then the same call is made through the guest library (BiosClient.get_attributes);
library/raw compares it with the raw SOAP post (the same bytes with requests).
Rounds alternate so that machine noise falls on all three alike.

Usage: .venv/bin/python bench/roundtrip.py [--calls N] [--rounds R]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from _shared import (  # bench/ is the script directory
    HEADERS,
    REQUEST,
    VBIOS,
    session_for,
    spawn_server,
    timed,
    wait_ready,
)
from vbios_client import BiosClient

from bios_ws.bootstrap import initialize_home
from bios_ws.cli.serve import ensure_demo_domain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="calls per round and target")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="vbios-bench-") as tmp:
        home = initialize_home(Path(tmp) / "home")
        bundle = ensure_demo_domain(home, "bench")
        try:
            proc, port = spawn_server([str(VBIOS), "serve", "--home", str(home.path)],
                                      Path(tmp) / "serve.log")
            procs.append(proc)
            soap_url = f"https://127.0.0.1:{port}/"
            soap = session_for(bundle)
            wait_ready(soap, soap_url, procs[0])
            reply = soap.post(soap_url, data=REQUEST, headers=HEADERS, timeout=10)
            if reply.status_code != 200 or b"GetAttributesResponse" not in reply.content:
                raise SystemExit(f"GetAttributes failed: HTTP {reply.status_code}")
            size = len(reply.content)

            proc, port = spawn_server(
                [sys.executable, str(Path(__file__).with_name("echo_server.py")),
                 "--home", str(home.path), "--size", str(size)], Path(tmp) / "echo.log")
            procs.append(proc)
            echo_url = f"https://127.0.0.1:{port}/"
            echo = session_for(bundle)
            wait_ready(echo, echo_url, procs[1])
            if len(echo.post(echo_url, data=REQUEST, headers=HEADERS).content) != size:
                raise SystemExit("echo response size differs")

            client = BiosClient.from_bundle(soap_url, bundle)
            targets: dict[str, Callable[[], object]] = {
                "soap": lambda: soap.post(soap_url, data=REQUEST, headers=HEADERS, timeout=10),
                "echo": lambda: echo.post(echo_url, data=REQUEST, headers=HEADERS, timeout=10),
                "library": client.get_attributes,
            }
            for call in targets.values():  # warm-up: connections, caches, workers
                timed(call, 50)
            spent = dict.fromkeys(targets, 0.0)
            for _ in range(args.rounds):
                for name, call in targets.items():
                    spent[name] += timed(call, args.calls)
            client.close()
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=20)
    total = args.calls * args.rounds
    rate = {name: total / seconds for name, seconds in spent.items()}
    print(f"GetAttributes response: {size} bytes; {total} calls per target, "
          f"{args.rounds} alternating rounds, one keep-alive session each")
    print(f"echo WSGI app (baseline): {rate['echo']:8.1f} calls/s  "
          f"{1e6 / rate['echo']:7.0f} us/call")
    print(f"SOAP endpoint:            {rate['soap']:8.1f} calls/s  "
          f"{1e6 / rate['soap']:7.0f} us/call")
    print(f"guest library:            {rate['library']:8.1f} calls/s  "
          f"{1e6 / rate['library']:7.0f} us/call")
    print(f"server soap/echo ratio: {rate['soap'] / rate['echo']:.2f}")
    print(f"library/echo ratio: {rate['library'] / rate['echo']:.2f}")
    # issue 11: a library call costs at most 1.25x posting the same bytes (ratio >= 0.80)
    print(f"library/raw ratio: {rate['library'] / rate['soap']:.2f} (a library call costs"
          f" {rate['soap'] / rate['library']:.2f}x posting its bytes with requests)")


if __name__ == "__main__":
    main()
