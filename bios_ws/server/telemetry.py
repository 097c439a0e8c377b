"""What the serving process and its workers record of the calls: metrics, access log.

``ServingTelemetry`` is the serving process's part. At start it checks that the
access log can be written (a worker that could not would die at once) and makes the
metrics directory fresh: ``METRICS_DIR/<its pid>``, emptied, with the directories of
serving processes that no longer run removed (a new serving process that takes over
while the old one still drains keeps to its own). When a worker exits it does
prometheus_client's bookkeeping (``mark_process_dead``: the live gauges of that pid);
its counts stay. The directory stays after the service stops (the next start removes
it).

``WorkerTelemetry`` is a worker's part, built in the worker after the fork: the
process's ``ServerMetrics`` (every SQL statement timed) and its ``AccessLog``;
``NotingApp`` around the application (``bios_ws.server.calls``).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from bios_ws.errors import AdminError
from bios_ws.server.access_log import DIRECTORY_MODE, AccessLog, Rotation
from bios_ws.server.calls import Call, NotingApp
from bios_ws.server.identity import WSGIApp
from bios_ws.server.options import ACCESS_LOG_STDERR, ServerOptions

if TYPE_CHECKING:
    from bios_ws.server.metrics import ServerMetrics

log = logging.getLogger(__name__)


class WorkerTelemetry:
    """One worker's metrics and access log (either may be absent)."""

    def __init__(self, metrics: ServerMetrics | None, access_log: AccessLog | None) -> None:
        self.metrics = metrics
        self.access_log = access_log

    def wrap(self, app: WSGIApp) -> WSGIApp:
        return NotingApp(app, self.metrics)

    def called(self, call: Call) -> None:
        if self.metrics is not None:
            self.metrics.observe_call(call.operation, call.outcome, call.duration)
        if self.access_log is not None:
            self.access_log.write(call)

    def handshake_failed(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.handshake_failed(reason)

    def close(self) -> None:
        if self.metrics is not None:
            self.metrics.close()
        if self.access_log is not None:
            self.access_log.close()


class ServingTelemetry:
    """The serving process's part (see the module docstring)."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.metrics_dir: Path | None = None

    def start(self) -> None:
        """Check the access log, make the metrics directory fresh; AdminError if either
        cannot be written."""
        target = self.options.access_log
        if target is not None and target != ACCESS_LOG_STDERR:
            try:
                AccessLog.to_file(Path(target), self._rotation()).close()
            except (OSError, ValueError) as exc:
                raise AdminError(f"cannot write the access log {target}:"
                                 f" {getattr(exc, 'strerror', None) or exc}") from None
        base = self.options.metrics_dir
        if base is not None:
            try:
                self.metrics_dir = fresh_metrics_dir(base, os.getpid())
            except OSError as exc:
                raise AdminError(f"cannot make the metrics directory in {base}:"
                                 f" {exc.strerror}") from None

    def for_worker(self) -> WorkerTelemetry:
        """The telemetry of a new worker (call in the worker, after the fork)."""
        from bios_ws.server.metrics import ServerMetrics

        metrics = ServerMetrics(self.metrics_dir)
        metrics.time_store_statements()
        target = self.options.access_log
        if target is None:
            access_log = None
        elif target == ACCESS_LOG_STDERR:
            access_log = AccessLog.to_stderr()
        else:
            access_log = AccessLog.to_file(Path(target), self._rotation())
        return WorkerTelemetry(metrics, access_log)

    def worker_exited(self, pid: int) -> None:
        if self.metrics_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(  # type: ignore[no-untyped-call]
                pid, str(self.metrics_dir))

    def _rotation(self) -> Rotation:
        return Rotation(self.options.access_log_max_bytes, self.options.access_log_backups)


def fresh_metrics_dir(base: Path, pid: int) -> Path:
    """``base/<pid>``, empty; the directories in ``base`` of processes gone removed."""
    base.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    for entry in base.iterdir():
        if entry.name.isdigit() and int(entry.name) != pid and _running(int(entry.name)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    mine = base / str(pid)
    mine.mkdir(mode=DIRECTORY_MODE)
    return mine


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
