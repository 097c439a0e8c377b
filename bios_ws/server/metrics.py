"""A worker's metrics, counted across the worker processes (prometheus_client).

What the workers count (``docs/metrics.md`` lists every name):

- ``vbios_calls_total{operation, outcome}``: answered calls; ``outcome`` is ``ok``,
  the fault code, or ``http_STATUS`` (``bios_ws.server.calls``);
- ``vbios_call_duration_seconds{operation}``: head received to answer ready to write;
- ``vbios_tls_handshake_failures_total{reason}``: as the front classifies them;
- ``vbios_store_statement_duration_seconds{statement}``: every SQL statement the
  worker runs (SELECT, INSERT, UPDATE, DELETE, other), timed by SQLAlchemy's
  cursor-execute events (``StatementTiming``);
- ``vbios_store_conflict_retries_total``: units of work run again after losing to a
  concurrent transaction (``bios_ws.store.retry``).

Across processes: with a ``directory`` (the serving process's, made fresh when it
starts: ``bios_ws.server.telemetry``) each worker keeps its values in memory-mapped
files there (prometheus_client's multiprocess mode, values keyed by pid), and a
scrape, whichever worker answers it, reads every worker's files into a fresh
registry (``MultiProcessCollector``): counts of workers that exited stay counted.
Without one (a front in a test, a single process), the worker's own registry is read.

The multiprocess mode is chosen for this process here, not from the environment at
import: prometheus_client picks its value class when first imported, and the serving
process may import it before any directory exists; the directory's path is still
put in this process's environment, where prometheus_client's value files look for it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bios_ws.domain.ports import add_retry_listener, remove_retry_listener

if TYPE_CHECKING:
    from prometheus_client.registry import Collector

#: Where prometheus_client's value files find their directory.
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Calls take from a few hundred microseconds (a read on the loop) to a minute (a long
#: poll for events).
CALL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                2.5, 5.0, 10.0, 30.0, 60.0)
STATEMENT_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                     0.05, 0.1, 0.25, 1.0, 5.0)
#: Statement kinds, by their first word; anything else is ``other``.
STATEMENT_KINDS = frozenset({"select", "insert", "update", "delete"})
_OPERATION, _OUTCOME, _REASON, _STATEMENT = "operation", "outcome", "reason", "statement"
#: Where a connection keeps the start times of its statements under way.
_STARTED = "vbios_statement_started"


class ServerMetrics:
    """The metrics of one worker process (see the module docstring)."""

    def __init__(self, directory: Path | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram, values

        if directory is not None:
            os.environ[MULTIPROC_ENV] = str(directory)
            values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
        else:
            values.ValueClass = values.MutexValue
        self.directory = directory
        self._registry = CollectorRegistry()
        registry = self._registry
        self._calls = Counter("vbios_calls", "Calls answered, by operation and outcome.",
                              [_OPERATION, _OUTCOME], registry=registry)
        self._durations = Histogram(
            "vbios_call_duration_seconds",
            "Seconds from a request's head received to its answer ready to write.",
            [_OPERATION], buckets=CALL_BUCKETS, registry=registry)
        self._handshakes = Counter("vbios_tls_handshake_failures",
                                   "TLS handshakes that failed, by reason.", [_REASON],
                                   registry=registry)
        self._statements = Histogram(
            "vbios_store_statement_duration_seconds",
            "Seconds each SQL statement a worker ran took, by kind.", [_STATEMENT],
            buckets=STATEMENT_BUCKETS, registry=registry)
        self._retries = Counter("vbios_store_conflict_retries",
                                "Units of work run again after losing to a concurrent one.",
                                registry=registry)
        self._timing: StatementTiming | None = None

    def observe_call(self, operation: str, outcome: str, seconds: float) -> None:
        self._calls.labels(operation, outcome).inc()
        self._durations.labels(operation).observe(seconds)

    def handshake_failed(self, reason: str) -> None:
        self._handshakes.labels(reason).inc()

    def observe_statement(self, kind: str, seconds: float) -> None:
        self._statements.labels(kind).observe(seconds)

    def conflict_retried(self, attempt: int) -> None:
        self._retries.inc()

    def time_store_statements(self) -> None:
        """Time every SQL statement this process runs, and count its units of work run
        again after a conflict, from now until ``close``."""
        if self._timing is None:
            self._timing = StatementTiming(self.observe_statement)
            self._timing.install()
            add_retry_listener(self.conflict_retried)

    def exposition(self, *extra: Collector) -> bytes:
        """The Prometheus text exposition of every worker's counts and ``extra`` (read
        now: a fresh registry per scrape)."""
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        if self.directory is not None:
            MultiProcessCollector(registry, path=str(self.directory))  # type: ignore[no-untyped-call]
        else:
            registry.register(_Collected(self._registry.collect))
        for collector in extra:
            registry.register(collector)
        return bytes(generate_latest(registry))

    def close(self) -> None:
        if self._timing is not None:
            self._timing.remove()
            self._timing = None
            remove_retry_listener(self.conflict_retried)


class _Collected:
    """A collector that yields what ``collect`` yields (a registry, inside another)."""

    def __init__(self, collect: Callable[[], Iterable[Any]]) -> None:
        self.collect = collect


def statement_kind(statement: str) -> str:
    """``select``, ``insert``, ``update``, ``delete`` or ``other``: the statement's first
    word (a label of a few values, never the statement)."""
    word = statement[:12].lstrip()[:6].lower()
    return word if word in STATEMENT_KINDS else "other"


class StatementTiming:
    """SQLAlchemy listeners, on every engine of the process, that time each statement
    from cursor execute to its end (the rows fetched by then; a commit is no statement
    here, and neither is SQLite's BEGIN the store issues on the driver itself)."""

    def __init__(self, observe: Callable[[str, float], None]) -> None:
        self._observe = observe

    def install(self) -> None:
        from sqlalchemy import Engine, event

        event.listen(Engine, "before_cursor_execute", self._before)
        event.listen(Engine, "after_cursor_execute", self._after)
        event.listen(Engine, "handle_error", self._failed)

    def remove(self) -> None:
        from sqlalchemy import Engine, event

        event.remove(Engine, "before_cursor_execute", self._before)
        event.remove(Engine, "after_cursor_execute", self._after)
        event.remove(Engine, "handle_error", self._failed)

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any,
                context: Any, executemany: bool) -> None:
        conn.info.setdefault(_STARTED, []).append(time.perf_counter())

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any,
               context: Any, executemany: bool) -> None:
        started = conn.info.get(_STARTED)
        if started:
            self._observe(statement_kind(statement), time.perf_counter() - started.pop())

    def _failed(self, context: Any) -> None:
        """A statement failed: it is timed as well (its start would stay behind)."""
        conn = context.connection
        started = None if conn is None else conn.info.get(_STARTED)
        if started and context.statement is not None:
            self._observe(statement_kind(context.statement), time.perf_counter() - started.pop())
