"""The serving process: forks the workers on the listening socket and keeps them running.

``vbios serve`` binds the listening socket itself (no window for another process
to take the port), or takes the one systemd or the master it replaces passed on,
and hands it here; each worker inherits it through ``fork`` and builds its own
application after the fork (no database connection crosses a fork). A worker
that dies is replaced (a worker that cannot start ends the service instead of
looping). SIGTERM or SIGINT stops the workers gracefully (calls in progress
finish within ``drain_timeout``).

SIGUSR2 (upgrade) and SIGHUP (reload) start a successor: ``vbios serve`` run
again from the code and configuration on disk, given the listening socket and
the serve lock (``bios_ws.server.handover``). Once its workers accept, this
master stops its own gracefully and exits; if the successor fails (the keys do
not unseal for changed code...), this one keeps serving and logs why. Where the
master may not be replaced (under systemd, which stops a service whose main
process exits; ``vbios devrun``), SIGHUP replaces the workers one by one by
fork, the new worker accepting before the old one stops, and SIGUSR2 is refused
in the log.
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
from dataclasses import dataclass, replace

from bios_ws.server.exchange import Refuse, plain_refusal
from bios_ws.server.handover import Outcome, Relaunch, Successor, start_successor
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


@dataclass(frozen=True)
class Restarts:
    """How this master may be restarted: ``relaunch`` starts a successor (None: it may
    not, ``unavailable`` says why); ``on_serving`` runs once the first workers accept."""

    relaunch: Relaunch | None = None
    unavailable: str = "this server cannot start a successor"
    on_serving: Callable[[], None] | None = None


class Master:
    def __init__(self, app_factory: Callable[[], WSGIApp], tls: ServerTls,
                 options: ServerOptions, listener: socket.socket, refuse: Refuse,
                 restarts: Restarts = Restarts()) -> None:
        self.app_factory = app_factory
        self.tls = tls
        self.options = options
        self.listener = listener
        self.refuse = refuse
        self.restarts = restarts
        self.workers: dict[int, float] = {}  # pid -> start time
        self.retiring: set[int] = set()  # replaced by a reload: not to be replaced again
        self.stop_requested = False
        self.restart_signal: signal.Signals | None = None
        self.successor: Successor | None = None
        self.early_deaths = 0
        self.accepting = 0  # workers that said they accept (since this master started)
        self.serving = False
        self._accepting_read, self._accepting_write = os.pipe()
        os.set_blocking(self._accepting_read, False)
        self.telemetry = ServingTelemetry(options)

    def run(self) -> int:
        self.telemetry.start()
        self.listener.setblocking(False)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_restart)
        signal.signal(signal.SIGUSR2, self._on_restart)
        for _ in range(self.options.workers):
            self.spawn()
        while not self.stop_requested:
            if self.restart_signal is not None:
                self.restart(self.restart_signal)
                self.restart_signal = None
            if self.successor is not None and self.follow_successor():
                self.stop_workers()  # handed over: ours finish their calls, then exit
                return 0
            self.count_accepting()
            if not self.reap(respawn=True):
                self.stop_requested = True
                self.stop_workers()
                return 1
            time.sleep(0.2)
        if self.successor is not None:
            log.info("stopping the new server %d too: it was not serving yet",
                     self.successor.pid)
            self.successor.stop()
        self.stop_workers()
        return 0

    def _on_stop(self, signum: int, frame: object) -> None:
        self.stop_requested = True

    def _on_restart(self, signum: int, frame: object) -> None:
        self.restart_signal = signal.Signals(signum)

    def restart(self, signum: signal.Signals) -> None:
        """Start a successor (SIGHUP without one: replace the workers by fork)."""
        relaunch = self.restarts.relaunch
        if self.successor is not None:
            log.warning("%s ignored: the new server %d is still starting", signum.name,
                        self.successor.pid)
        elif relaunch is None and signum == signal.SIGHUP:
            log.info("SIGHUP: %s; replacing the workers by fork (this master's code)",
                     self.restarts.unavailable)
            self.reload()
        elif relaunch is None:
            log.warning("%s refused: %s", signum.name, self.restarts.unavailable)
        else:
            self.successor = start_successor(relaunch, self.listener)
            log.info("%s: starting a new server (pid %d) with the code and configuration on"
                     " disk; this one serves until it does", signum.name, self.successor.pid)

    def follow_successor(self) -> bool:
        """Whether the successor serves now (this master's turn to stop); a failed one is
        logged and forgotten (this master keeps serving)."""
        assert self.successor is not None
        outcome = self.successor.poll()
        if outcome is Outcome.SERVING:
            log.info("the new server %d serves: stopping this one (calls in progress"
                     " finish)", self.successor.pid)
            return True
        if outcome is Outcome.FAILED:
            log.error("the new server %d failed (%s; its log above says why): this server"
                      " (pid %d) keeps serving", self.successor.pid, self.successor.failure,
                      os.getpid())
            self.successor = None
        return False

    def count_accepting(self) -> None:
        """Count the workers that said they accept; once all of the first ones do, run
        ``on_serving`` (a successor tells the master it replaces)."""
        try:
            self.accepting += len(os.read(self._accepting_read, 4096))
        except BlockingIOError:
            return
        if not self.serving and self.accepting >= self.options.workers:
            self.serving = True
            log.info("%d workers accept", self.accepting)
            if self.restarts.on_serving is not None:
                self.restarts.on_serving()

    def _say_accepting(self) -> None:
        """In a worker, once its server listens."""
        with contextlib.suppress(OSError):
            os.write(self._accepting_write, b".")

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
                os.close(self._accepting_read)
                signal.signal(signal.SIGUSR2, signal.SIG_IGN)
                worker = Worker(self.app_factory(), tls=self.tls, bounds=self.options.bounds,
                                threads=self.options.threads,
                                graceful_timeout=self.options.drain_timeout,
                                refuse=self.refuse, on_accepting=self._say_accepting,
                                telemetry=self.telemetry.for_worker())
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
               listener: socket.socket, refuse: Refuse = plain_refusal,
               restarts: Restarts = Restarts()) -> int:
    """Serve on ``listener`` in the foreground until SIGTERM/SIGINT; the exit code."""
    allowed = raise_open_file_limit(options.bounds.max_connections)
    if allowed < options.bounds.max_connections:
        log.warning("the open-file limit allows %d connections per worker, not %d",
                    allowed, options.bounds.max_connections)
        options = replace(options, bounds=replace(options.bounds, max_connections=allowed))
    log.info("serving with %d workers x %d threads", options.workers, options.threads)
    return Master(app_factory, tls, options, listener, refuse, restarts).run()
