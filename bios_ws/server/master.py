"""The serving process: forks the workers on the bound socket and keeps them running.

``vbios serve`` binds the listening socket itself (no window for another process
to take the port) and hands it here; each worker inherits it through ``fork`` and
builds its own application after the fork (no database connection crosses a
fork). A worker that dies is replaced (a worker that cannot start ends the
service instead of looping). SIGTERM or SIGINT stops the workers gracefully
(calls in progress finish within ``graceful_timeout``); SIGHUP replaces them one
by one, the new worker accepting before the old one stops.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import replace

from bios_ws.server.exchange import Refuse, plain_refusal
from bios_ws.server.identity import WSGIApp
from bios_ws.server.libc import libc_function
from bios_ws.server.options import ServerOptions
from bios_ws.server.telemetry import ServingTelemetry
from bios_ws.server.tls import ServerTls
from bios_ws.server.worker import Worker

log = logging.getLogger(__name__)

#: Loggers of libraries that may log whole request bodies: silenced.
QUIET_LOGGERS = ("spyne",)
#: Open files a worker needs beyond its connections (store, logs, TPM, machines).
SPARE_FILES = 256
#: A worker that dies this soon after its start, this many times in a row, is not restarted.
EARLY_DEATH_SECONDS = 5.0
EARLY_DEATHS_TOLERATED = 3
PR_SET_PDEATHSIG = 1
#: Looked up before any fork, not in each new worker.
_PRCTL = libc_function("prctl")


def configure_logging(level: str = "INFO") -> None:
    """Log lines on stderr; library loggers that could print request bodies stay silent."""
    logging.basicConfig(
        level=level.upper(),
        stream=sys.stderr,
        format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s",
    )
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def raise_open_file_limit(connections: int) -> int:
    """Raise RLIMIT_NOFILE to fit ``connections`` (up to the hard limit); the number of
    connections the limit now allows."""
    need = connections + SPARE_FILES
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < need:
        soft = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft == resource.RLIM_INFINITY:
        return connections
    return max(1, min(connections, soft - SPARE_FILES))


class Master:
    def __init__(self, app_factory: Callable[[], WSGIApp], tls: ServerTls,
                 options: ServerOptions, listener: socket.socket, refuse: Refuse) -> None:
        self.app_factory = app_factory
        self.tls = tls
        self.options = options
        self.listener = listener
        self.refuse = refuse
        self.workers: dict[int, float] = {}  # pid -> start time
        self.retiring: set[int] = set()  # replaced by a reload: not to be replaced again
        self.stop_requested = False
        self.reload_requested = False
        self.early_deaths = 0
        self.telemetry = ServingTelemetry(options)

    def run(self) -> int:
        self.telemetry.start()
        self.listener.setblocking(False)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)
        for _ in range(self.options.workers):
            self.spawn()
        while not self.stop_requested:
            if self.reload_requested:
                self.reload_requested = False
                self.reload()
            if not self.reap(respawn=True):
                self.stop_requested = True
                self.stop_workers()
                return 1
            time.sleep(0.2)
        self.stop_workers()
        return 0

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stop_requested = True

    def _on_reload(self, signum: int, frame: object) -> None:
        self.reload_requested = True

    def spawn(self) -> int:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                die_with_parent(parent)
                for signum in (signal.SIGTERM, signal.SIGINT):
                    signal.signal(signum, signal.SIG_DFL)
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
                worker = Worker(self.app_factory(), tls=self.tls, bounds=self.options.bounds,
                                threads=self.options.threads,
                                graceful_timeout=self.options.drain_timeout,
                                refuse=self.refuse, telemetry=self.telemetry.for_worker())
                worker.run(self.listener)
            except BaseException:
                log.exception("worker %d failed", os.getpid())
                code = 1
            finally:
                logging.shutdown()
                os._exit(code)
        self.workers[pid] = time.monotonic()
        log.info("worker %d started", pid)
        return pid

    def reap(self, *, respawn: bool) -> bool:
        """Collect exited workers (replacing them with ``respawn``); False when workers
        keep dying right after they start."""
        for pid in list(self.workers):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done == 0:
                continue
            started = self.workers.pop(pid)
            self.telemetry.worker_exited(pid)
            log.log(logging.INFO if status == 0 else logging.WARNING,
                    "worker %d exited (%s)", pid, _exit_text(status))
            if pid in self.retiring:
                self.retiring.discard(pid)
                continue
            if not respawn:
                continue
            if time.monotonic() - started < EARLY_DEATH_SECONDS:
                self.early_deaths += 1
                if self.early_deaths > EARLY_DEATHS_TOLERATED:
                    log.error("workers exit right after they start: stopping the service")
                    return False
            else:
                self.early_deaths = 0
            self.spawn()
        return True

    def reload(self) -> None:
        log.info("replacing the workers")
        for old in set(self.workers) - self.retiring:
            self.spawn()
            self.retiring.add(old)
            self._signal(old, signal.SIGTERM)

    def stop_workers(self) -> None:
        for pid in list(self.workers):
            self._signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.options.drain_timeout + 5.0
        while self.workers and time.monotonic() < deadline:
            self.reap(respawn=False)
            time.sleep(0.05)
        for pid in list(self.workers):
            log.error("worker %d did not stop in time: killed", pid)
            self._signal(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.workers.clear()

    def _signal(self, pid: int, signum: int) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            self.workers.pop(pid, None)


def die_with_parent(parent: int) -> None:
    """A worker gets SIGKILL when the serving process ``parent`` ends, however it ends
    (Linux)."""
    if _PRCTL is not None:
        _PRCTL(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent ended before the call above
        os._exit(1)


def _exit_text(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"code {os.waitstatus_to_exitcode(status)}"


def run_server(app_factory: Callable[[], WSGIApp], tls: ServerTls, options: ServerOptions,
               listener: socket.socket, refuse: Refuse = plain_refusal) -> int:
    """Serve on ``listener`` in the foreground until SIGTERM/SIGINT; the exit code."""
    allowed = raise_open_file_limit(options.bounds.max_connections)
    if allowed < options.bounds.max_connections:
        log.warning("the open-file limit allows %d connections per worker, not %d",
                    allowed, options.bounds.max_connections)
        options = replace(options, bounds=replace(options.bounds, max_connections=allowed))
    log.info("serving with %d workers x %d threads", options.workers, options.threads)
    return Master(app_factory, tls, options, listener, refuse).run()
