"""The firmware's variable store: the cost of a write, and what a pending change adds to a
reset.

1. In one process, rounds alternate between writing a domain's whole firmware image
   into a copy of OVMF's variable store (parse, apply the boot entries, keys and
   published attributes, rebuild, replace the file atomically keeping the previous
   copy) and a GetAttributes call over mutual TLS to a running `vbios serve` (the
   baseline).
2. On a QEMU + OVMF guest (TCG), the time from a guest's Reset (ForceRestart) to
   the firmware's first boot attempt on its console, with nothing pending, and with
   a pending change (a boot order change and an OnReset attribute) that the reset
   writes into the store first; median of the runs.

Usage: .venv/bin/python bench/firmware.py [--calls N] [--rounds R] [--qemu-runs K]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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
from bios_ws.config import Config, PlatformOptions
from bios_ws.domain.firmware_plan import plan_boot
from bios_ws.domain.principal import Principal
from bios_ws.home import Home
from bios_ws.platform.keysets import load_key_set
from bios_ws.platform.qemu.firmware import apply_image
from bios_ws.platform.qemu.layout import MachineLayout
from bios_ws.platform.qemu.nvram import load, save
from bios_ws.service.bios import BiosService
from bios_ws.service.power import PowerService
from bios_ws.tpm.devtpm import DevTpm

BOOT_ATTEMPT = re.compile(rb"BdsDxe: (loading|failed to load) Boot")
QEMU_LIMIT = 120.0


def store_writer(home: Path, work: Path) -> Callable[[], object]:
    """One whole firmware write of domain "bench" into a copy of the OVMF template."""
    store = work / "vars.fd"
    shutil.copyfile(PlatformOptions().ovmf_vars, store)
    with bootstrap(Config.of(Home.open(home))) as app:
        state = app.use(BiosService).state_of("bench")
        registry = app.registry
    keys = load_key_set("snakeoil")
    layout = MachineLayout.of("bench")
    flip = [0]

    def write() -> None:
        flip[0] ^= 1
        state.current["AssetTag"] = f"tag-{flip[0]}"  # a real change at every write
        image = plan_boot(state, registry, keys).firmware
        current = load(store)
        save(store, current, apply_image(current.variables, image, layout))

    return write


def reset_to_attempt(home: Path, url: str, bundle: Path, runs: int,
                     pending: bool) -> list[float]:
    admin = Principal.admin("bench")
    with bootstrap(Config.of(Home.open(home))) as app, \
            BiosClient.from_bundle(url, bundle, timeout=120) as bios:
        power = app.use(PowerService)

        def attempts() -> int:
            return len(BOOT_ATTEMPT.findall(power.console(admin, "benchq", 1 << 20)))

        def settle() -> None:
            """Until the last boot has printed all it will (one quiet second)."""
            size, quiet_since = -1, time.monotonic()
            while time.monotonic() - quiet_since < 1.0:
                now = len(power.console(admin, "benchq", 1 << 20))
                if now != size:
                    size, quiet_since = now, time.monotonic()
                time.sleep(0.1)

        deadline = time.monotonic() + QEMU_LIMIT
        while attempts() == 0:  # the power-on's own first attempt, before any measurement
            if time.monotonic() > deadline:
                raise SystemExit("no boot attempt on the console in time")
            time.sleep(0.05)
        seconds = []
        for run in range(runs):
            if pending:  # later entries swap places: the first attempt stays the same
                order = list(bios.get_boot_order().order)
                order[1], order[2] = order[2], order[1]
                bios.set_boot_order(order)
                bios.set_attributes({"AssetTag": f"run-{run}"}, apply_time="OnReset")
            settle()
            before = attempts()
            began = time.perf_counter()
            bios.reset("ForceRestart")
            deadline = time.monotonic() + QEMU_LIMIT
            while attempts() <= before:
                if time.monotonic() > deadline:
                    raise SystemExit("no boot attempt on the console in time")
                time.sleep(0.05)
            seconds.append(time.perf_counter() - began)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--qemu-runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vbios-bench-firmware-") as tmp:
        work, home = Path(tmp), Path(tmp) / "home"
        try:
            bundle = init_home(home)
            qbundle = work / "benchq"
            done = subprocess.run([str(VBIOS), "domain", "create", "benchq", "--machine",
                                   "qemu", "--home", str(home), "--out", str(qbundle)],
                                  capture_output=True, text=True, timeout=120, check=False)
            if done.returncode != 0:
                raise SystemExit(done.stderr)
            proc, port = spawn_server([str(VBIOS), "serve", "--home", str(home)],
                                      work / "serve.log")
            url = f"https://127.0.0.1:{port}/"
            try:
                session = session_for(bundle)
                write = store_writer(home, work)

                def attributes() -> None:
                    session.post(url, data=REQUEST, headers=HEADERS, timeout=30)

                timed(write, 10)
                timed(attributes, 20)
                spent = {"store write": 0.0, "GetAttributes": 0.0}
                for _ in range(args.rounds):
                    spent["store write"] += timed(write, args.calls)
                    spent["GetAttributes"] += timed(attributes, args.calls)
                with BiosClient.from_bundle(url, qbundle, timeout=120) as bios:
                    # no network boot: every attempt fails at once, the boots settle
                    bios.set_attributes({"PxeDev1EnDis": "Disabled"}, apply_time="OnReset")
                    bios.reset("On")
                plain = reset_to_attempt(home, url, qbundle, args.qemu_runs, pending=False)
                changed = reset_to_attempt(home, url, qbundle, args.qemu_runs, pending=True)
                with BiosClient.from_bundle(url, qbundle, timeout=120) as bios:
                    bios.reset("ForceOff")
            finally:
                stop_server(proc)
        finally:
            DevTpm(home / "tpm").stop()
    total = args.calls * args.rounds
    print(f"{total} calls each, {args.rounds} alternating rounds:")
    for name, seconds in spent.items():
        print(f"  {name:<14} {total / seconds:8.1f} per s  {seconds / total * 1e6:7.0f} us")
    print(f"ratio store write / GetAttributes: {spent['store write'] / spent['GetAttributes']:.2f}")
    for name, runs in (("nothing pending", plain), ("a pending change", changed)):
        print(f"Reset to first boot attempt, {name}: median {statistics.median(runs):.2f} s"
              f" (min {min(runs):.2f}, max {max(runs):.2f}, {len(runs)} runs)")


if __name__ == "__main__":
    main()
