"""What bench/concurrency.py prints: a table per operation, the ratios issue 11 sets
goals for, and its side-by-side table in Markdown."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

from _load import Sample

from bios_ws.server.options import ServerOptions

Results = Mapping[tuple[str, str, int], Sample]

LABELS = {
    "echo": "echo app, same front and TLS",
    "raw": "bios-ws, raw requests posting the SOAP bytes",
    "library": "bios-ws, guest library",
    "sushy": "sushy-tools, gunicorn keep-alive",
}
#: Issue 11's write goal: at 16 guests, writes at least as fast as reads were when it was
#: filed (raw requests posting GetAttributes: 500/s on this machine kind).
READS_WHEN_FILED = 500
WHAT = {
    "GET": "GetAttributes; sushy-tools: GET /redfish/v1/Systems/<id>/BIOS",
    "SET": "SetAttributes of one Integer; sushy-tools: PATCH .../BIOS/Settings",
}


def guests_text(level: int) -> str:
    return f"{level} guest" if level == 1 else f"{level} guests"


def ms(seconds: float) -> str:
    """A latency as people write it: 4.2 ms, 270 ms, 1.4 s."""
    if seconds >= 1:
        return f"{seconds:.1f} s"
    return f"{seconds * 1e3:.0f} ms" if seconds >= 0.1 else f"{seconds * 1e3:.1f} ms"


def print_tables(results: Results, levels: Sequence[int]) -> None:
    targets = [t for t in LABELS if any(key[0] == t for key in results)]
    for op in ("GET", "SET"):
        print(f"\n{op}: {WHAT[op]}")
        print(f"{'target':46} {'guests':>6} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
        for level in levels:
            for target in targets:
                s = results[target, op, level]
                print(f"{LABELS[target]:46} {level:6d} {s.rate:9.1f} "
                      f"{s.p50 * 1e3:8.2f} {s.p99 * 1e3:8.2f}")


def print_ratios(results: Results, levels: Sequence[int]) -> None:
    """Each ratio at every level where both figures were measured."""
    def rate(target: str, op: str, level: int) -> float | None:
        sample = results.get((target, op, level))
        return None if sample is None else sample.rate

    def row(label: str, goal: str, ratio: Callable[[int], float | None]) -> None:
        cells = [ratio(level) for level in levels]
        text = "".join(f"{'-' if c is None else f'{c:.2f}':>10}" for c in cells)
        print(f"{label:46}{text}   {goal}")

    def quotient(top: tuple[str, str], bottom: tuple[str, str]) -> Callable[[int], float | None]:
        def at(level: int) -> float | None:
            a, b = rate(*top, level), rate(*bottom, level)
            return None if a is None or b is None else a / b
        return at

    print(f"\nratios{'':40}" + "".join(f"{guests_text(n):>10}" for n in levels) + "   goal")
    for op in ("GET", "SET"):
        row(f"soap/echo {op} (calls/s raw / echo)", ">= 0.8",
            quotient(("raw", op), ("echo", op)))
    for op in ("GET", "SET"):
        row(f"library/raw cost {op} (raw / library calls/s)", "<= 1.25",
            quotient(("raw", op), ("library", op)))
    row("SET/GET throughput, raw", "(1: writes as fast as reads are now)",
        quotient(("raw", "SET"), ("raw", "GET")))
    row("library GET / sushy-tools GET", ">= 1.5 at 1 guest, >= 2 at 16",
        quotient(("library", "GET"), ("sushy", "GET")))
    top = levels[-1]
    p99 = ", ".join(f"{t} {ms(results[t, 'SET', top].p99)}" for t in ("raw", "library"))
    print(f"SET p99 at {guests_text(top)}: {p99}   goal < 100 ms at 16 guests")
    sets = ", ".join(f"{t} {results[t, 'SET', top].rate:.0f}/s" for t in ("raw", "library"))
    print(f"SET at {guests_text(top)}: {sets}   goal >= {READS_WHEN_FILED}/s (issue 11: reads"
          " at 16 guests when it was filed, raw requests)")


def print_issue_table(results: Results, levels: Sequence[int]) -> None:
    """Issue 11's table: the lowest and highest levels, p99 at the highest."""
    low, high = levels[0], levels[-1]
    columns = [("GET", low), ("GET", high), ("SET", low), ("SET", high)]
    print("\n| | " + " | ".join(f"{op} {guests_text(n)}" for op, n in columns) + " |")
    print("| --- |" + " ---: |" * len(columns))
    for target in ("raw", "library", "sushy", "echo"):
        if (target, "GET", low) not in results:
            continue
        cells = []
        for op, level in columns:
            s = results[target, op, level]
            cells.append(f"{s.rate:.0f}/s" + (f", p99 {ms(s.p99)}"
                                              if level == high and high != low else ""))
        print(f"| {LABELS[target]} | " + " | ".join(cells) + " |")


def print_report(results: Results, levels: Sequence[int], sizes: Mapping[str, int],
                 budget: str) -> None:
    body = ", ".join(f"{name} {size:,} B" for name, size in sizes.items())
    print(f"\nbench/concurrency.py on {os.cpu_count()} cores: {budget}; "
          f"each server {ServerOptions.workers} workers x {ServerOptions.threads} threads; "
          f"responses: {body}")
    print_tables(results, levels)
    print_ratios(results, levels)
    print_issue_table(results, levels)
