"""Power requests: their round trip against GetAttributes, and a real firmware's reboot.

1. A simulated machine: in one process, over one mutual-TLS keep-alive session
   to one `vbios serve`, rounds alternate between GetAttributes (the baseline)
   and power requests (Pause, then Resume: each a full request through the
   power use case, the machine's lock, its state file and the audit log).
2. A QEMU + OVMF machine (TCG): the time from a guest's Reset (ForceRestart)
   to the firmware's first boot attempt on the serial console
   (`BdsDxe: loading ...` or `BdsDxe: failed to load ...`), median of the runs.

Usage: .venv/bin/python bench/power.py [--calls N] [--rounds R] [--qemu-runs K]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests
from _shared import (
    HEADERS,
    REQUEST,
    VBIOS,
    init_home,
    session_for,
    spawn_server,
    stop_server,
    timed,
)
from vbios_client import BiosClient

from bios_ws.bootstrap import bootstrap
from bios_ws.config import Config
from bios_ws.domain.principal import Principal
from bios_ws.home import Home
from bios_ws.service.power import PowerService
from bios_ws.tpm.devtpm import DevTpm

NS = "urn:bios-ws:vbios:v1"
BOOT_ATTEMPT = re.compile(rb"BdsDxe: (loading|failed to load) Boot")
QEMU_LIMIT = 120.0


def reset_request(reset_type: str) -> bytes:
    return (
        "<?xml version='1.0' encoding='UTF-8'?>"
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        f'xmlns:v="{NS}"><soapenv:Body><v:Reset><v:ResetType>{reset_type}</v:ResetType>'
        "</v:Reset></soapenv:Body></soapenv:Envelope>"
    ).encode()


def post(session: requests.Session, url: str, body: bytes) -> None:
    reply = session.post(url, data=body, headers=HEADERS, timeout=30)
    if reply.status_code != 200:
        raise SystemExit(f"HTTP {reply.status_code}: {reply.content[:300]!r}")


def simulated(url: str, bundle: Path, calls: int, rounds: int) -> dict[str, float]:
    """Seconds per call: GetAttributes, and a power request (Pause or Resume)."""
    session = session_for(bundle)
    pause, resume = reset_request("Pause"), reset_request("Resume")

    def power_pair() -> None:
        post(session, url, pause)
        post(session, url, resume)

    def attributes() -> None:
        post(session, url, REQUEST)

    timed(attributes, 20)
    timed(power_pair, 10)
    spent = {"GetAttributes": 0.0, "power request": 0.0}
    for _ in range(rounds):
        spent["GetAttributes"] += timed(attributes, calls)
        spent["power request"] += timed(power_pair, calls // 2)
    return {"GetAttributes": spent["GetAttributes"] / (calls * rounds),
            "power request": spent["power request"] / ((calls // 2) * 2 * rounds)}


def qemu_boots(home: Path, url: str, bundle: Path, runs: int) -> list[float]:
    """Seconds from Reset (ForceRestart) to the firmware's first boot attempt, per run."""
    with bootstrap(Config.of(Home.open(home))) as app, \
            BiosClient.from_bundle(url, bundle, timeout=60) as bios:
        power = app.use(PowerService)
        admin = Principal.admin("bench")
        bios.reset("On")
        wait_boot_attempt(lambda: power.console(admin, "benchq", 1 << 20), 0)
        seconds = []
        for _ in range(runs):
            before = len(BOOT_ATTEMPT.findall(power.console(admin, "benchq", 1 << 20)))
            began = time.perf_counter()
            bios.reset("ForceRestart")
            wait_boot_attempt(lambda: power.console(admin, "benchq", 1 << 20), before)
            seconds.append(time.perf_counter() - began)
        bios.reset("ForceOff")
    return seconds


def wait_boot_attempt(console: Callable[[], bytes], seen: int) -> None:
    deadline = time.monotonic() + QEMU_LIMIT
    while time.monotonic() < deadline:
        if len(BOOT_ATTEMPT.findall(console())) > seen:
            return
        time.sleep(0.05)
    raise SystemExit(f"no boot attempt on the console within {QEMU_LIMIT:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per round and target")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--qemu-runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vbios-bench-power-") as tmp:
        home = Path(tmp) / "home"
        try:
            bundle = init_home(home)
            qemu_bundle = home / "bundles" / "benchq"
            created = subprocess_vbios("domain", "create", "benchq", "--machine", "qemu",
                                       "--home", str(home), "--out", str(qemu_bundle))
            proc, port = spawn_server([str(VBIOS), "serve", "--home", str(home)],
                                      Path(tmp) / "serve.log")
            url = f"https://127.0.0.1:{port}/"
            try:
                with BiosClient.from_bundle(url, bundle) as bios:
                    bios.reset("On")
                    while bios.get_power_state().power_state != "On":
                        time.sleep(0.1)
                per_call = simulated(url, bundle, args.calls, args.rounds)
                boots = qemu_boots(home, url, qemu_bundle, args.qemu_runs) if created else []
            finally:
                stop_server(proc)
        finally:
            DevTpm(home / "tpm").stop()
    total = args.calls * args.rounds
    print(f"simulated machine, {total} calls per target in {args.rounds} alternating rounds,"
          " one keep-alive mutual-TLS session:")
    for name, seconds in per_call.items():
        print(f"  {name:<14} {1 / seconds:8.1f} calls/s  {seconds * 1e6:7.0f} us/call")
    ratio = per_call["power request"] / per_call["GetAttributes"]
    print(f"ratio power request / GetAttributes (time per call): {ratio:.2f}")
    if boots:
        print(f"qemu machine (TCG), Reset ForceRestart to the first boot attempt, {len(boots)}"
              f" runs: median {statistics.median(boots):.2f} s"
              f" (min {min(boots):.2f}, max {max(boots):.2f})")


def subprocess_vbios(*argv: str) -> bool:
    import subprocess

    done = subprocess.run([str(VBIOS), *argv], capture_output=True, text=True, timeout=120,
                          check=False)
    if done.returncode != 0:
        print(f"(no qemu machine: {done.stderr.strip()})")
    return done.returncode == 0


if __name__ == "__main__":
    main()
