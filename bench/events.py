"""Events under load: 100 subscribers long-polling while guests write, none missing an
event, each domain's order kept, and what the subscribers cost the other guests.

One `vbios serve` (a home without TPM, its default 2 workers x 8 threads) on loopback,
and guests of their own:
  writers      4 guests (ev0..ev3), each writing one attribute (SetAttributes) at a
               steady --rate per second: each write is a SettingsChanged event of its domain
  subscribers  --subscribers guests' iterators (BiosClient.events, 30 s long polls), in a
               process of their own, spread over four domains:
                 waiting    quiet domains (q0..q3): parked the whole cell, while the
                            writers' events go by (the worker reads their marks)
                 receiving  the writers' domains: each write wakes a quarter of them
  readers      --readers guests posting GetAttributes (requests, raw SOAP bytes) as fast
               as they can: their p50/p99 is the figure
Rounds run a cell without subscribers, one with them waiting and one with them
receiving (all three with the writers), --seconds each; the figures are the medians of
the rounds. After each cell with subscribers: every subscriber got exactly its domain's
events after its start, in id order, the versions rising (checked against the store);
and for the receiving ones the delay from a write's answer to each receipt.

Usage: .venv/bin/python bench/events.py [--seconds S] [--rounds R] [--subscribers N]
           [--readers K] [--rate W]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _load import Sample, percentile, run_cell
from _shared import HEADERS, REQUEST, VBIOS, session_for, spawn_server, stop_server, wait_ready
from vbios_client import BiosClient

from bios_ws.bootstrap import initialize_home
from bios_ws.cli.serve import ensure_demo_domain
from bios_ws.domain.events import EventFilter, EventType
from bios_ws.store import open_store

DOMAINS = ("ev0", "ev1", "ev2", "ev3")
QUIET = ("q0", "q1", "q2", "q3")
ATTRIBUTE = "AcPwrRcvryDelay"  # an Integer 0-600 taking effect at once


# -- the subscribers' process ---------------------------------------------------------------

def subscribers(url: str, bundles: dict[str, str], count: int) -> None:
    """Run ``count`` subscribers, spread over the domains of ``bundles``; say "ready" once
    all are subscribed; stop once stdin ends (each after its next event); print what
    each received, as JSON."""
    stop = threading.Event()
    received: list[dict[str, Any]] = []
    threads = []
    domains = sorted(bundles)
    for n in range(count):
        domain = domains[n % len(domains)]
        client = BiosClient.from_bundle(url, bundles[domain], timeout=30)
        stream = client.events([EventType.SETTINGS_CHANGED.value], wait=30)
        mine: dict[str, Any] = {"domain": domain, "start": stream.cursor, "events": []}
        received.append(mine)

        def follow(stream: Any = stream, mine: dict[str, Any] = mine,
                   client: BiosClient = client) -> None:
            for event in stream:
                mine["events"].append((event.event_id, int(event.message_args[2]),
                                       time.time()))
                if stop.is_set():
                    break
            stream.close()
            client.close()
        threads.append(threading.Thread(target=follow, daemon=True))
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    sys.stdin.read()
    stop.set()
    for thread in threads:
        thread.join()
    print(json.dumps(received), flush=True)


class Subscribers:
    """The subscribers' process, seen from the bench."""

    def __init__(self, url: str, bundles: dict[str, Path], count: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child", url,
             json.dumps({d: str(b) for d, b in bundles.items()}), str(count)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != "ready":
            raise SystemExit("the subscribers did not start")

    def stop(self, nudge: Callable[[], None]) -> list[dict[str, Any]]:
        """Tell them to stop, and ``nudge`` (a write to every domain) until they have."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        done = threading.Event()
        out: list[str] = []
        reader = threading.Thread(target=lambda: (out.append(self.proc.stdout.read()),  # type: ignore[union-attr]
                                                  done.set()), daemon=True)
        reader.start()
        while not done.wait(0.3):
            nudge()
        self.proc.wait(30)
        return list(json.loads(out[0]))


# -- writers and readers ------------------------------------------------------------------

class Writers:
    """One thread per writer domain (``DOMAINS``) writing ``rate`` times a second until
    stopped; each write's (domain, new version) -> the time its answer came."""

    def __init__(self, clients: dict[str, BiosClient], rate: float) -> None:
        self.clients, self.rate = clients, rate
        self.answered: dict[tuple[str, int], float] = {}
        self.values = dict.fromkeys(clients, 0)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def write(self, domain: str) -> None:
        self.values[domain] = self.values[domain] % 600 + 1
        version = self.clients[domain].set_attributes({ATTRIBUTE: self.values[domain]})
        self.answered[domain, version] = time.time()

    def __enter__(self) -> Writers:
        self._stop.clear()
        for domain in DOMAINS:
            thread = threading.Thread(target=self._run, args=(domain,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _run(self, domain: str) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.write(domain)
            next_at += 1 / self.rate
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        self._threads.clear()


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) used so far by process ``pid`` (all its threads) and
    its children that still run (the server's workers), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(entry) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def read_cell(url: str, readers: list[Any], seconds: float) -> Sample:
    def get(session: Any) -> Callable[[], None]:
        def call() -> None:
            reply = session.post(url, data=REQUEST, headers=HEADERS, timeout=30)
            if reply.status_code != 200:
                raise RuntimeError(f"HTTP {reply.status_code}")
        return call
    return run_cell([get(session) for session in readers], seconds=seconds)


# -- checks -------------------------------------------------------------------------------

def check(db_url: str, received: list[dict[str, Any]], writers: Writers) -> list[float]:
    """Every subscriber got its domain's events after its start up to its last one, once
    each, in id order with rising versions; the delays from a write's answer to each
    receipt of its event (seconds)."""
    store = open_store(db_url)
    delays = []
    try:
        for n, mine in enumerate(received):
            ids = [event_id for event_id, _, _ in mine["events"]]
            versions = [version for _, version, _ in mine["events"]]
            wanted = EventFilter(frozenset({mine["domain"]}),
                                 frozenset({EventType.SETTINGS_CHANGED}))
            with store.unit_of_work() as uow:
                stored = [e.event_id for e in uow.events.after(mine["start"], wanted,
                                                                1_000_000).events]
            expected = [event_id for event_id in stored if ids and event_id <= ids[-1]]
            if ids != expected or versions != sorted(set(versions)):
                raise SystemExit(f"subscriber {n} ({mine['domain']}): got {len(ids)} events,"
                                 f" the store has {len(expected)}; order or gaps differ")
            for _, version, at in mine["events"]:
                written = writers.answered.get((mine["domain"], version))
                if written is not None:
                    delays.append(at - written)
    finally:
        store.dispose()
    return delays


# -- the run ------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=2.0,
                        help="writes per second of each of the 4 writers")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        subscribers(args.child[0], json.loads(args.child[1]), int(args.child[2]))
        return
    with tempfile.TemporaryDirectory(prefix="vbios-bench-events-") as tmp:
        home = initialize_home(Path(tmp) / "home")
        bundles = {d: ensure_demo_domain(home, d) for d in (*DOMAINS, *QUIET)}
        reader_bundles = [ensure_demo_domain(home, f"rd{n}") for n in range(args.readers)]
        proc, port = spawn_server([str(VBIOS), "serve", "--home", str(home.path)],
                                  Path(tmp) / "serve.log")
        try:
            run(args, f"https://127.0.0.1:{port}/", home.db_url, bundles, reader_bundles,
                proc)
        finally:
            stop_server(proc)


def run(args: argparse.Namespace, url: str, db_url: str, bundles: dict[str, Path],
        reader_bundles: list[Path], proc: Any) -> None:
    readers = [session_for(bundle) for bundle in reader_bundles]
    wait_ready(readers[0], url, proc)
    writers = Writers({d: BiosClient.from_bundle(url, b) for d, b in bundles.items()},
                      args.rate)
    read_cell(url, readers, 1.0)  # warm-up: connections, caches, workers
    cells: dict[str, list[Sample]] = {"without": [], "waiting": [], "receiving": []}
    cpu: dict[str, list[tuple[float, float]]] = {cell: [] for cell in cells}
    delays: list[float] = []
    events = 0

    def measure(cell: str, subs: Subscribers | None = None) -> None:
        child = 0 if subs is None else subs.proc.pid
        used = cpu_seconds(proc.pid), cpu_seconds(child) if child else 0.0
        with writers:
            cells[cell].append(read_cell(url, readers, args.seconds))
        cpu[cell].append(((cpu_seconds(proc.pid) - used[0]) / args.seconds,
                          (cpu_seconds(child) - used[1]) / args.seconds if child else 0.0))

    for _ in range(args.rounds):
        measure("without")
        for cell, domains in (("waiting", QUIET), ("receiving", DOMAINS)):
            subs = Subscribers(url, {d: bundles[d] for d in domains}, args.subscribers)
            measure(cell, subs)
            received = subs.stop(lambda domains=domains: [writers.write(d) for d in domains])
            found = check(db_url, received, writers)  # the waiting: the stop's events
            delays += found if cell == "receiving" else []
            events += sum(len(mine["events"]) for mine in received)
    report(args, cells, cpu, delays, events,
           {n: wake_check_cost(db_url, n) for n in (0, 10, 100)})


def wake_check_cost(db_url: str, back: int, calls: int = 2000) -> float:
    """Seconds one wake-up check takes when ``back`` events came since the last (the
    marks a worker reads for all its parked requests in one unit of work)."""
    store = open_store(db_url)
    try:
        with store.unit_of_work() as uow:
            cursor = max(0, uow.events.head() - back)
        for _ in range(100):  # warm-up: the connection, the statement
            with store.unit_of_work() as uow:
                uow.events.marks_after(cursor, 1000)
        start = time.perf_counter()
        for _ in range(calls):
            with store.unit_of_work() as uow:
                uow.events.marks_after(cursor, 1000)
        return (time.perf_counter() - start) / calls
    finally:
        store.dispose()


def report(args: argparse.Namespace, cells: dict[str, list[Sample]],
           cpu: dict[str, list[tuple[float, float]]], delays: list[float], events: int,
           check_cost: dict[int, float]) -> None:
    def median(key: str, figure: str) -> float:
        return statistics.median(getattr(s, figure) for s in cells[key])

    print(f"\nGetAttributes of {args.readers} guests while 4 guests write {args.rate:g}/s each"
          f" ({args.rounds} rounds of {args.seconds:g} s, medians):")
    print(f"{'':36} {'calls/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'p99 ratio':>9}"
          f" {'server CPU':>10} {'subscribers CPU':>15}")
    base = median("without", "p99")
    for key, label in (("without", "without subscribers"),
                       ("waiting", f"{args.subscribers} subscribers waiting"),
                       ("receiving", f"{args.subscribers} subscribers receiving")):
        server = statistics.median(c[0] for c in cpu[key])
        client = statistics.median(c[1] for c in cpu[key])
        print(f"{label:36} {median(key, 'rate'):8.1f} {median(key, 'p50') * 1e3:7.2f}"
              f" {median(key, 'p99') * 1e3:7.2f} {median(key, 'p99') / base:9.2f}"
              f" {server:10.0%} {client:15.0%}")
    print("(CPU: of one core, over the cell; this machine has"
          f" {os.cpu_count()} cores for the server, the readers and the subscribers)")
    print("goal: p99 with the waiting subscribers at most 1.10 times the p99 without")
    print(f"\nsubscribers received {events} events, none missing, each domain's in order"
          " (checked against the store)")
    if delays:
        print(f"from a write's answer to a subscriber's receipt: p50"
              f" {percentile(delays, 50) * 1e3:.0f} ms, p99 {percentile(delays, 99) * 1e3:.0f}"
              f" ms, max {max(delays) * 1e3:.0f} ms")
    costs = ", ".join(f"{seconds * 1e6:.0f} us ({n} new events)"
                      for n, seconds in check_cost.items())
    print(f"a worker's wake-up check, one read for all its parked requests every 0.2 s:"
          f" {costs}")


if __name__ == "__main__":
    main()
