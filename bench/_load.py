"""Concurrent load of the benchmark scripts: N threads calling at once, each its own
guest (its own session or client), and what one such cell measures.

Pure of any server: a call is a function of no argument that raises when the call
failed, so a failed call never counts as a fast one.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Call = Callable[[], None]


@dataclass(frozen=True)
class Sample:
    """One cell: calls per second over the wall time and per-call latency in seconds."""

    calls: int
    rate: float
    p50: float
    p99: float


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of ``values``: the smallest
    value that at least p % of the values do not exceed."""
    if not values:
        raise ValueError("no values")
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} is not in (0, 100]")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def median_sample(samples: Sequence[Sample]) -> Sample:
    """The median of each figure of repeated cells (the figures of one need not come
    from the same repetition)."""
    return Sample(calls=int(statistics.median(s.calls for s in samples)),
                  rate=statistics.median(s.rate for s in samples),
                  p50=statistics.median(s.p50 for s in samples),
                  p99=statistics.median(s.p99 for s in samples))


def run_cell(calls: Sequence[Call], *, seconds: float | None = None,
             per_thread: int | None = None) -> Sample:
    """Run each of ``calls`` in a thread of its own, all released at once, for
    ``seconds`` or ``per_thread`` calls each; a call that raises stops the cell."""
    if (seconds is None) == (per_thread is None):
        raise ValueError("give seconds or per_thread, not both")
    start = threading.Barrier(len(calls) + 1)
    latencies: list[list[float]] = [[] for _ in calls]
    failures: list[BaseException] = []

    def loop(call: Call, own: list[float]) -> None:
        start.wait()
        clock = time.perf_counter
        deadline = clock() + seconds if seconds is not None else math.inf
        remaining = per_thread if per_thread is not None else -1
        try:
            while remaining != 0 and clock() < deadline and not failures:
                begun = clock()
                call()
                own.append(clock() - begun)
                remaining -= 1
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=loop, args=(call, own), daemon=True)
               for call, own in zip(calls, latencies, strict=True)]
    for thread in threads:
        thread.start()
    start.wait()
    begun = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - begun
    if failures:
        raise RuntimeError(f"a call failed: {failures[0]!r}") from failures[0]
    every = [latency for own in latencies for latency in own]
    return Sample(calls=len(every), rate=len(every) / wall,
                  p50=percentile(every, 50), p99=percentile(every, 99))
