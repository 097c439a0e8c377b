"""Fleets (issue 16): GetAttributes latency with 10, 1,000 and 10,000 domains in the
store, and calls per second under 1, 4 and 16 concurrent guests, on SQLite and on
PostgreSQL, in one run. Printed figures, not a timed test.

Per store, on loopback and in a temporary directory:
  - a home without TPM whose store is SQLite in the home, or a database on a PostgreSQL
    server of the run's own (tests/postgres_support.py: initdb, then postgres on a unix
    socket, stopped by its pid);
  - the first 10 domains made as `vbios` makes them (``ensure_demo_domain``: the domain
    use case, and a guest bundle each), then `vbios serve` (its default workers and
    threads) started once;
  - GetAttributes of guest 1 (raw requests posting the SOAP bytes, one keep-alive
    session), ``--rounds`` rounds of ``--calls`` calls, at 10 domains, then again after
    the store grew to 1,000 and to 10,000 domains while the same server runs; each
    round alternates with one against a baseline: a second home of 10 domains, on a
    server and a store (database) of its own, so that the machine's drift between sizes
    falls on both, and the ratio compares calls made in the same minute;
  - after the baseline, the load's other guests (to 16) made as the first 10, before the
    store grows: at 10,000 domains a SQLite writer can wait past its busy timeout (10 s)
    behind the servers' thermal policy, which saves every domain's record in one
    transaction every few seconds (``ThermalService.evaluate``);
  - at 10,000 domains, 1, 4 and 16 guests (each its own domain and session) calling
    GetAttributes at once for ``--seconds`` per cell (bench/_load.py).
The store grows in bulk, in transactions of ``BATCH`` domains, through the store's own
repositories: each domain's row, its machine record and its incarnation, and its
simulated machine's file, as the domain use case writes them (``DomainService.create``),
without an audit record per domain. How long that takes is printed.

Usage: .venv/bin/python bench/scale.py [--calls N] [--rounds R] [--seconds S]
           [--sizes 10,1000,10000] [--concurrency 1,4,16] [--stores sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from _load import Call, Sample, median_sample, percentile, run_cell
from _shared import (
    HEADERS,
    REQUEST,
    VBIOS,
    load_average,
    machine,
    session_for,
    spawn_server,
    stop_server,
    wait_ready,
)
from sqlalchemy import Connection, Table, insert, select

from bios_ws.bootstrap import bootstrap, initialize_home
from bios_ws.cli.serve import ensure_demo_domain
from bios_ws.config import Config
from bios_ws.domain.credentials import new_incarnation
from bios_ws.domain.power import MachineKind, MachineRecord
from bios_ws.domain.state import DomainState
from bios_ws.home import Home
from bios_ws.platform.keysets import lazy_key_set as load_key_set_lazily
from bios_ws.server.options import ServerOptions
from bios_ws.service.registry_keeper import RegistryKeeper
from bios_ws.service.secureboot import follow_keys
from bios_ws.store import schema
from bios_ws.store.engine import driver_connection

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.postgres_support
from tests.postgres_support import PostgresServer, postgres_bindir, running_postgres

#: Domains per statement and transaction while the store grows.
BATCH = 1_000
#: The tables ``DomainService.create`` writes a row of the new domain to (but the audit's).
TABLES = (schema.domains, schema.machines, schema.identities)
#: The domains made as `vbios` makes them, each with a guest bundle: the baseline.
FIRST = 10
#: The goal: GetAttributes at 10,000 domains within this factor of 10 domains.
GOAL = 1.1


def domain_name(n: int) -> str:
    return f"g{n:05d}"


@contextmanager
def postgres(tmp: Path) -> Iterator[PostgresServer]:
    """A PostgreSQL server of this run's own (``tests.postgres_support``)."""
    def private_dir() -> Path:
        (tmp / "postgres").mkdir()
        return tmp / "postgres"

    with running_postgres(private_dir) as server:
        yield server


def grow(home: Home, start: int, stop: int) -> float:
    """Domains ``start`` to ``stop - 1``; the seconds it took. The first is added through
    the repositories as ``DomainService.create`` adds one; its rows are the template of the
    others', inserted ``BATCH`` to a statement (with their own id and incarnation), while
    their machines' files are written by a few threads."""
    begun = time.perf_counter()
    config = Config.of(home)
    keys = load_key_set_lazily(config.platform.secure_boot_keys)()
    with bootstrap(config) as app:
        platform = app.platforms[MachineKind.SIMULATED]
        first = domain_name(start)
        with app.store.unit_of_work() as uow:
            state = DomainState.new(first, RegistryKeeper(app.registry).refresh(
                uow, for_update=True))
            follow_keys(state, keys)
            uow.domains.add(state, datetime.now(UTC))
            uow.machines.add(MachineRecord(first, MachineKind.SIMULATED))
            uow.credentials.set_incarnation(first, new_incarnation())
            platform.create(first, firmware=True)
            uow.commit()
        with app.store.unit_of_work() as uow:
            conn = uow.connection(write=False)
            templates = [(table, dict(conn.execute(
                select(table).where(table.c.domain_id == first)).one()._mapping))
                for table in TABLES]
        with ThreadPoolExecutor(max_workers=8) as files:
            made = files.map(lambda n: platform.create(domain_name(n), firmware=True),
                             range(start + 1, stop))
            for low in range(start + 1, stop, BATCH):
                names = [domain_name(n) for n in range(low, min(low + BATCH, stop))]
                with app.store.unit_of_work() as uow:
                    conn = uow.connection(write=True)
                    for table, row in templates:
                        insert_rows(conn, table, [
                            {**row, "domain_id": name, **({"incarnation": new_incarnation()}
                                                          if "incarnation" in row else {})}
                            for name in names])
                    uow.commit()
            list(made)  # a machine that could not be written fails the run
    return time.perf_counter() - begun


def insert_rows(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """``rows`` into ``table`` within ``conn``'s transaction: on PostgreSQL with COPY (one
    round trip), on SQLite with the driver's executemany."""
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    columns = list(rows[0])
    with driver_connection(conn).cursor() as cursor, cursor.copy(
            f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([row[column] for column in columns])


def count_domains(home: Home) -> int:
    with bootstrap(Config.of(home)) as app, app.store.unit_of_work() as uow:
        return len(uow.domains.list())


def tree_cpu(pid: int) -> float:
    """CPU seconds (user and system) the process ``pid`` and its children have used."""
    pids, total = [pid], 0.0
    tick = os.sysconf("SC_CLK_TCK")
    while pids:
        one = pids.pop()
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
            for task in Path(f"/proc/{one}/task").iterdir():
                pids += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
    return total


def idle_cpu(pid: int, seconds: float) -> float:
    """The share of one core the server tree ``pid`` uses over ``seconds`` with no call."""
    before = tree_cpu(pid)
    time.sleep(seconds)
    return (tree_cpu(pid) - before) / seconds


@dataclass(frozen=True)
class Latency:
    domains: int
    mean: float  # the median of the rounds' mean latencies, seconds
    p50: float
    p99: float
    grow_seconds: float
    idle: float  # the share of a core the server uses with no call
    #: The baseline's (a store of FIRST domains, its own server) median, in the same
    #: rounds, interleaved: the machine's drift falls on both.
    baseline: float


def latency(big: Call, base: Call, calls: int, rounds: int
            ) -> tuple[float, float, float, float]:
    """GetAttributes of the store measured and of the baseline store, in alternating
    rounds (ABBA): the median round mean, p50 and p99 of the one; the median round mean
    of the other."""
    for _ in range(50):  # warm-up: connection, caches, both workers
        big()
        base()
    means: dict[int, list[float]] = {0: [], 1: []}
    every: list[float] = []
    for number in range(rounds):
        for side in ((0, 1) if number % 2 == 0 else (1, 0)):
            call = big if side == 0 else base
            begun = time.perf_counter()
            for _ in range(calls):
                one = time.perf_counter()
                call()
                if side == 0:
                    every.append(time.perf_counter() - one)
            means[side].append((time.perf_counter() - begun) / calls)
    return (statistics.median(means[0]), percentile(every, 50), percentile(every, 99),
            statistics.median(means[1]))


@dataclass
class StoreRun:
    store: str
    latencies: list[Latency]
    throughput: dict[int, Sample]


def served_home(name: str, tmp: Path, args: argparse.Namespace, pg: PostgresServer | None
                ) -> tuple[Home, list[Path], subprocess.Popen[bytes], str]:
    """A home (its store SQLite, or a new database on ``pg``) with its first ``FIRST``
    domains, served: the home, the guests' bundles, the server and its URL."""
    path = tmp / f"home-{name}"
    if pg is not None:
        Home.create(path).record_store(pg.url(pg.create_database(template="template0")))
    home = initialize_home(path)
    bundles = [ensure_demo_domain(home, domain_name(n)) for n in range(FIRST)]
    extra = [] if args.thermal_interval is None \
        else ["--thermal-interval", f"{args.thermal_interval:g}"]
    proc, port = spawn_server([str(VBIOS), "serve", "--home", str(home.path), *extra],
                              tmp / f"serve-{name}.log")
    return home, bundles, proc, f"https://127.0.0.1:{port}/"


def run_store(store: str, tmp: Path, args: argparse.Namespace,
              pg: PostgresServer | None) -> StoreRun:
    home, bundles, proc, url = served_home(store, tmp, args, pg)
    guests = max(args.concurrency)
    sessions: list[requests.Session] = []
    procs = [proc]
    try:
        _, base_bundles, base_proc, base_url = served_home(f"{store}-baseline", tmp, args, pg)
        procs.append(base_proc)
        sessions += [session_for(bundles[0]), session_for(base_bundles[0])]
        wait_ready(sessions[0], url, proc)
        wait_ready(sessions[1], base_url, base_proc)
        big, base = get_attributes(sessions[0], url), get_attributes(sessions[1], base_url)
        results: list[Latency] = []
        have = FIRST
        for size in args.sizes:
            if have == FIRST and size > FIRST:  # the load's guests, while writing is quick
                bundles += [ensure_demo_domain(home, domain_name(n))
                            for n in range(FIRST, max(guests, FIRST))]
                have = len(bundles)
            grown = grow(home, have, size) if size > have else 0.0
            have = max(have, size)
            if count_domains(home) != have:
                raise SystemExit(f"{store}: the store holds not {have} domains")
            idle = idle_cpu(proc.pid, args.idle)
            mean, p50, p99, baseline = latency(big, base, args.calls, args.rounds)
            results.append(Latency(have, mean, p50, p99, grown, idle, baseline))
            print(f"{store}: {have} domains (grown in {grown:.1f} s): GetAttributes "
                  f"{mean * 1e3:.2f} ms", file=sys.stderr, flush=True)
        if len(bundles) < guests:
            raise SystemExit(f"{guests} guests need a store of more than {FIRST} domains")
        load = [sessions[0], *(session_for(bundle) for bundle in bundles[1:guests])]
        sessions += load[1:]
        calls = [get_attributes(session, url) for session in load]
        run_cell(calls, per_thread=10)  # warm-up: every guest's connection
        throughput = {}
        for level in args.concurrency:
            throughput[level] = median_sample(
                [run_cell(calls[:level], seconds=args.seconds) for _ in range(args.reps)])
        return StoreRun(store, results, throughput)
    finally:
        for session in sessions:
            session.close()
        for each in procs:
            stop_server(each)


def get_attributes(session: requests.Session, url: str) -> Call:
    """One guest's GetAttributes, posting the SOAP bytes; raises unless it is answered."""
    def call() -> None:
        reply = session.post(url, data=REQUEST, headers=HEADERS, timeout=30)
        if reply.status_code != 200 or b"GetAttributesResponse" not in reply.content:
            raise RuntimeError(f"GetAttributes: HTTP {reply.status_code}")
    return call


def report(runs: Sequence[StoreRun], args: argparse.Namespace, pg_version: str,
           loads: tuple[str, str]) -> None:
    options = ServerOptions()
    thermal = args.thermal_interval or options.thermal_interval
    print(f"\nbench/scale.py on {machine()}")
    print(f"load average (1, 5, 15 min) at the start: {loads[0]}; at the end: {loads[1]}")
    print(f"server: vbios serve, {options.workers} workers x {options.threads} threads, "
          f"thermal policy every {thermal:g} s; PostgreSQL {pg_version} on a unix socket "
          "(fsync off, as the tests run it)")
    print(f"\nGetAttributes, one guest, keep-alive: median of {args.rounds} rounds of "
          f"{args.calls} calls; the store grows under the running server; 'base' is a store"
          f" of {FIRST} domains on a server of its own, measured in alternating rounds")
    print(f"{'store':11} {'domains':>8} {'grown in':>9} {'ms/call':>8} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'base ms':>8} {'vs base':>8} {'idle server CPU':>16}")
    for run in runs:
        for row in run.latencies:
            grown = f"{row.grow_seconds:.1f} s" if row.grow_seconds else "-"
            print(f"{run.store:11} {row.domains:8,d} {grown:>9} {row.mean * 1e3:8.2f} "
                  f"{row.p50 * 1e3:7.2f} {row.p99 * 1e3:7.2f} {row.baseline * 1e3:8.2f} "
                  f"{row.mean / row.baseline:8.2f} {row.idle * 100:14.0f} %")
        last = run.latencies[-1]
        ratio = last.mean / last.baseline
        verdict = "met" if ratio <= GOAL else "NOT met"
        print(f"{run.store}: {last.domains:,} domains / {FIRST} domains = {ratio:.2f}"
              f" (goal <= {GOAL}): {verdict}")
    top = max(row.domains for run in runs for row in run.latencies)
    print(f"\nGetAttributes, N guests at once (each its own domain and session), {top:,} "
          f"domains in the store: median of {args.reps} cells of {args.seconds:g} s")
    print(f"{'store':11} {'guests':>6} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for run in runs:
        for level, sample in run.throughput.items():
            print(f"{run.store:11} {level:6d} {sample.rate:9.1f} {sample.p50 * 1e3:8.2f} "
                  f"{sample.p99 * 1e3:8.2f}")


def parse_ints(text: str) -> list[int]:
    values = sorted({int(part) for part in text.split(",")})
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError("positive integers, comma-separated")
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls per latency round")
    parser.add_argument("--rounds", type=int, default=5, help="latency rounds per size")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per load cell")
    parser.add_argument("--idle", type=float, default=10.0,
                        help="seconds the server's own CPU use is measured, per size")
    parser.add_argument("--reps", type=int, default=3, help="load cells per level")
    parser.add_argument("--sizes", type=parse_ints, default=[10, 1_000, 10_000],
                        help="domains in the store (the first is the baseline, >= 10)")
    parser.add_argument("--concurrency", type=parse_ints, default=[1, 4, 16],
                        help="numbers of concurrent guests")
    parser.add_argument("--thermal-interval", type=float,
                        help="passed to vbios serve (default: its own, "
                             f"{ServerOptions.thermal_interval:g} s)")
    parser.add_argument("--stores", default="sqlite,postgresql",
                        help="sqlite, postgresql or both (comma-separated)")
    args = parser.parse_args()
    if args.sizes[0] < FIRST:
        parser.error(f"the smallest store holds at least {FIRST} domains")
    stores = [s for s in ("sqlite", "postgresql") if s in args.stores.split(",")]
    runs: list[StoreRun] = []
    start_load = load_average()
    pg_version = postgres_bindir().parent.name
    with tempfile.TemporaryDirectory(prefix="vbios-bench-") as name:
        tmp = Path(name)
        for store in stores:
            if store == "sqlite":
                runs.append(run_store(store, tmp, args, None))
                continue
            with postgres(tmp) as pg:
                runs.append(run_store(store, tmp, args, pg))
    report(runs, args, pg_version, (start_load, load_average()))


if __name__ == "__main__":
    main()
