"""What the metrics and the access log cost per call, measured in the worker's own code.

In one process set up as a worker of a serving process (prometheus_client's
multiprocess mode in a fresh directory, the access log in a file), times:
  - ``WorkerTelemetry.called``: a call counted, timed and logged (what the front
    does once per answered request), over 12 operations and 3 outcomes;
  - each half alone: the metrics (``ServerMetrics.observe_call``) and the log line
    (``AccessLog.write``);
  - reading the call's note back from the environ (``CallNote.read``);
  - timing one SQL statement (the two SQLAlchemy listeners and the histogram).
Medians of ``--rounds`` rounds of ``--calls`` each. bench/roundtrip.py gives the
whole round trip these costs are to be compared with.

Usage: .venv/bin/python bench/telemetry.py [--calls N] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bios_ws.domain.principal import Principal
from bios_ws.server.calls import Call, CallNote
from bios_ws.server.options import ServerOptions
from bios_ws.server.telemetry import ServingTelemetry
from bios_ws.soap.app import PRINCIPAL_ENVIRON_KEY
from bios_ws.soap.guard import OPERATION_ENVIRON_KEY

OPERATIONS = ("GetAttributes", "SetAttributes", "GetBootOrder", "SetBootOrder", "GetPowerState",
              "Reset", "GetThermalState", "GetEvents", "Subscribe", "GetIntegrity", "Quote",
              "ChangePassword")
OUTCOMES = ("ok", "ok", "ok", "InvalidPassword", "ok", "VersionConflict")


class _Connection:
    def __init__(self) -> None:
        self.info: dict[str, Any] = {}


def per_call_us(action: Callable[[int], None], calls: int, rounds: int) -> float:
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for number in range(calls):
            action(number)
        results.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="vbios-bench-") as tmp:
        serving = ServingTelemetry(ServerOptions(access_log=Path(tmp) / "log" / "access.log",
                                                 metrics_dir=Path(tmp) / "metrics"))
        serving.start()
        worker = serving.for_worker()
        assert worker.metrics is not None and worker.access_log is not None
        metrics, access_log = worker.metrics, worker.access_log
        calls = [Call(started=time.time(), duration=0.0012, peer="127.0.0.1",
                      principal="guest:vm1", operation=OPERATIONS[n % len(OPERATIONS)],
                      outcome=OUTCOMES[n % len(OUTCOMES)], status=200, request_bytes=219,
                      response_bytes=5481) for n in range(len(OPERATIONS) * len(OUTCOMES))]
        environ = {PRINCIPAL_ENVIRON_KEY: Principal.guest("vm1"),
                   OPERATION_ENVIRON_KEY: "GetAttributes", "PATH_INFO": "/"}
        note = CallNote()
        timing = metrics._timing
        assert timing is not None
        connection = _Connection()

        def statement(number: int) -> None:
            timing._before(connection, None, "SELECT 1", None, None, False)
            timing._after(connection, None, "SELECT 1", None, None, False)

        figures = {
            "a call recorded (metrics + access log line)":
                lambda n: worker.called(calls[n % len(calls)]),
            "  metrics alone (counter + histogram)":
                lambda n: metrics.observe_call(calls[n % len(calls)].operation,
                                               calls[n % len(calls)].outcome, 0.0012),
            "  access log line alone (format + write)":
                lambda n: access_log.write(calls[n % len(calls)]),
            "the call's note read back": lambda n: note.read(environ),
            "one SQL statement timed": statement,
        }
        for what, action in figures.items():
            print(f"{what:45} {per_call_us(action, args.calls, args.rounds):7.2f} us")
        scrape = per_call_us(lambda n: metrics.exposition(), 20, 3)
        print(f"{'a scrape (files of 1 worker, no store gauges)':45} {scrape:7.0f} us")
        worker.close()


if __name__ == "__main__":
    main()
