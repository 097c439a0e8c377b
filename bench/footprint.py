"""What a call costs outside the hot loop: a CLI process per call, and the server's
memory over many calls, each against a baseline measured in the same run.

- CPU of one `vbios-client attributes get` process (start, call, print) and of
  `vbios --help`, against the interpreter starting and exiting (`python -c pass`):
  medians of ``--runs`` runs each, alternating, as the children's user + system time.
- The server's resident memory (master and workers, from /proc) after ``--warm``
  calls and after ``--calls`` calls from 8 guests, one call in four a write: the
  ratio of the two (goal: within 1.2x).

Usage: .venv/bin/python bench/footprint.py [--runs N] [--warm N] [--calls N]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from _shared import VBIOS, session_for, spawn_server, stop_server, wait_ready
from vbios_client import BiosClient

from bios_ws.bootstrap import initialize_home
from bios_ws.cli.serve import ensure_demo_domain

GUESTS = 8
CLIENT = Path(sys.executable).parent / "vbios-client"


def child_cpu(argv: list[str], env: dict[str, str]) -> float:
    """User + system seconds of one run of ``argv`` (which must succeed)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, env=env, capture_output=True, timeout=60, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {done.stderr.decode(errors='replace')[-500:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def resident_mib(pid: int) -> float:
    """Resident memory of ``pid`` and its children, in MiB."""
    pids = [pid] + [int(d) for d in os.listdir("/proc") if d.isdigit() and _parent(d) == pid]
    total = 0
    for each in pids:
        try:
            with open(f"/proc/{each}/status", encoding="ascii") as status:
                total += next(int(line.split()[1]) for line in status
                              if line.startswith("VmRSS:"))
        except (OSError, StopIteration):
            continue
    return total / 1024


def _parent(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def drive(clients: list[BiosClient], calls: int) -> None:
    """``calls`` calls spread over the guests' threads, one in four a write."""
    failures: list[BaseException] = []

    def guest(client: BiosClient, share: int) -> None:
        try:
            for n in range(share):
                if n % 4 == 3:
                    client.set_attributes({"AcPwrRcvryDelay": n % 600 + 1})
                else:
                    client.get_attributes()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=guest, args=(c, calls // len(clients))) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"a guest's call failed: {failures[0]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of each command")
    parser.add_argument("--warm", type=int, default=100, help="calls before the first size")
    parser.add_argument("--calls", type=int, default=10_000, help="calls before the second")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vbios-bench-") as tmp:
        home = initialize_home(Path(tmp) / "home")
        bundles = [ensure_demo_domain(home, f"guest-{n}") for n in range(1, GUESTS + 1)]
        proc, port = spawn_server([str(VBIOS), "serve", "--home", str(home.path)],
                                  Path(tmp) / "serve.log")
        try:
            url = f"https://127.0.0.1:{port}/"
            wait_ready(session_for(bundles[0]), url, proc)
            env = {**os.environ, "VBIOS_URL": url, "VBIOS_BUNDLE": str(bundles[0])}
            commands = {
                "python -c pass (baseline)": [sys.executable, "-c", "pass"],
                "vbios-client attributes get": [str(CLIENT), "attributes", "get"],
                "vbios --help": [str(VBIOS), "--help"],
            }
            cpu: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.runs):
                for name, argv in commands.items():
                    cpu[name].append(child_cpu(argv, env))
            base = statistics.median(cpu["python -c pass (baseline)"])
            print(f"CPU per process, median of {args.runs} runs (user + system):")
            for name, values in cpu.items():
                median = statistics.median(values)
                print(f"  {name:30} {median:6.3f} s   {median / base:5.1f}x the baseline")
            print("  goal: vbios-client attributes get under 0.25 s")

            clients = [BiosClient.from_bundle(url, bundle) for bundle in bundles]
            drive(clients, args.warm)
            warm = resident_mib(proc.pid)
            drive(clients, args.calls)
            after = resident_mib(proc.pid)
            print(f"\nserver resident memory ({GUESTS} guests, one call in four a write):")
            print(f"  after {args.warm:>7,} calls {warm:7.1f} MiB")
            print(f"  after {args.warm + args.calls:>7,} calls {after:7.1f} MiB"
                  f"   {after / warm:.2f}x   goal: within 1.2x")
            for client in clients:
                client.close()
        finally:
            stop_server(proc)


if __name__ == "__main__":
    main()
