"""A listening socket that outlives the serving process: systemd socket activation, and
the server's own handover to a successor that runs the code and configuration on disk.

Both speak systemd's ``sd_listen_fds`` protocol: the listening socket is file
descriptor 3, ``LISTEN_FDS=1`` and ``LISTEN_PID`` the pid of the process meant to
take it (an environment inherited by a process it is not meant for is ignored).
The handover adds two descriptors of its own: the home's serve lock (4, the same
open file, so the lock never leaves the old and new masters for a third
`vbios serve` to take) and a pipe (5) on which the successor says it serves.

The old master (``start_successor``) forks, places the three descriptors, and
re-executes the command line it was started with, in its environment (so
``PYTHONPATH``, ``VBIOS_TPM``... apply again). The successor measures itself and
unseals the keys through the TPM like any start, starts its workers and, once
every one accepts on the socket, writes ``READY`` on the pipe
(``Inherited.report_serving``). Only then does the old master stop its own
workers gracefully (calls in progress finish) and exit. A successor that exits
before that (its log says why: the keys do not unseal for changed code, a
damaged configuration...) leaves the old master serving.

Connections made meanwhile wait in the kernel's backlog of the one socket, which
every master and worker shares: none is refused.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import signal
import socket
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from enum import Enum

from bios_ws.errors import AdminError

log = logging.getLogger(__name__)

#: ``SD_LISTEN_FDS_START``: the first descriptor passed by socket activation.
LISTEN_FDS_START = 3
LOCK_FD = LISTEN_FDS_START + 1
READY_FD = LISTEN_FDS_START + 2
LISTEN_ENVIRONMENT = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")
LOCK_FD_ENV = "VBIOS_HANDOVER_LOCK_FD"
READY_FD_ENV = "VBIOS_HANDOVER_READY_FD"
FROM_PID_ENV = "VBIOS_HANDOVER_FROM_PID"
HANDOVER_ENVIRONMENT = (LOCK_FD_ENV, READY_FD_ENV, FROM_PID_ENV)
#: What the successor writes on the pipe once its workers accept.
READY = b"READY\n"
#: Descriptors are moved at least this high before they are placed at 3, 4 and 5.
_SCRATCH_FD = 10
#: Seconds a successor may take to serve (measure, unseal, start its workers).
SUCCESSOR_TIMEOUT = 120.0


@dataclass(frozen=True)
class Inherited:
    """What this process was given: a listening socket (socket activation or a handover)
    and, from a handover, the serve lock's descriptor and the pipe to say it serves."""

    listener: socket.socket | None = None
    lock_fd: int | None = None
    ready_fd: int | None = None
    from_pid: int | None = None

    @property
    def handed_over(self) -> bool:
        return self.ready_fd is not None

    def report_serving(self) -> None:
        """Tell the old master that this one serves (it then stops its workers)."""
        if self.ready_fd is None:
            return
        with contextlib.suppress(OSError):  # an old master already gone has nothing to stop
            os.write(self.ready_fd, READY)
        with contextlib.suppress(OSError):
            os.close(self.ready_fd)


#: A process started by hand: it binds its socket and takes the lock itself.
NOTHING_INHERITED = Inherited()


def inherited_from(environ: MutableMapping[str, str], pid: int) -> Inherited:
    """What the environment passes to process ``pid`` (the sd_listen_fds rules); the
    variables are removed so that no process started later takes them for its own.
    AdminError when they are meant for us but do not describe one listening TCP socket."""
    listen_pid = environ.get("LISTEN_PID", "")
    listen_fds = environ.get("LISTEN_FDS", "")
    handover = {name: environ.get(name, "") for name in HANDOVER_ENVIRONMENT}
    for name in (*LISTEN_ENVIRONMENT, *HANDOVER_ENVIRONMENT):
        environ.pop(name, None)
    if not listen_fds or listen_pid != str(pid):
        return Inherited()
    if not listen_fds.isdigit() or int(listen_fds) != 1:
        raise AdminError(f"LISTEN_FDS={listen_fds!r}: vbios serve takes exactly one listening"
                         " socket (one ListenStream= in the socket unit)")
    listener = _listening_socket(LISTEN_FDS_START)
    if not handover[READY_FD_ENV]:
        return Inherited(listener)
    try:
        lock_fd, ready_fd = int(handover[LOCK_FD_ENV]), int(handover[READY_FD_ENV])
        from_pid = int(handover[FROM_PID_ENV])
    except ValueError:
        raise AdminError(f"malformed handover environment: {handover}") from None
    for fd in (lock_fd, ready_fd):
        try:
            os.set_inheritable(fd, False)  # nothing this process starts may hold them
        except OSError:
            raise AdminError(f"handover descriptor {fd} is not open") from None
    return Inherited(listener, lock_fd, ready_fd, from_pid)


def _listening_socket(fd: int) -> socket.socket:
    try:
        listener = socket.socket(fileno=fd)
    except OSError:
        raise AdminError(f"LISTEN_FDS names descriptor {fd}, which is not a socket") from None
    listening = listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    if (listener.type != socket.SOCK_STREAM
            or listener.family not in (socket.AF_INET, socket.AF_INET6) or not listening):
        listener.detach()
        raise AdminError(f"descriptor {fd} is not a listening TCP socket")
    listener.set_inheritable(False)
    # connections made from now on inherit it (socket units: NoDelay=yes sets it before)
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return listener


# -- the old master's side ---------------------------------------------------------------


@dataclass(frozen=True)
class Relaunch:
    """How a master starts its successor: the command line it was started with
    (``sys.orig_argv``, run again by ``executable``), its environment, and the serve
    lock's descriptor to pass on."""

    executable: str
    argv: tuple[str, ...]
    environ: Mapping[str, str]
    lock_fd: int


class Outcome(Enum):
    STARTING = "starting"
    SERVING = "serving"
    FAILED = "failed"


class Successor:
    """A new master started by ``start_successor``, until it serves or fails."""

    def __init__(self, pid: int, ready_fd: int) -> None:
        self.pid = pid
        self.ready_fd = ready_fd
        self.started = time.monotonic()
        self.failure = ""
        self._said = b""

    def fileno(self) -> int:
        return self.ready_fd

    def poll(self) -> Outcome:
        """SERVING once it said so; FAILED (``failure`` says how) once it exited or
        overran ``SUCCESSOR_TIMEOUT`` (then it is stopped); else STARTING."""
        try:
            chunk = os.read(self.ready_fd, len(READY))
        except BlockingIOError:
            chunk = None
        self._said += chunk or b""
        if self._said.startswith(READY):
            self._close()
            return Outcome.SERVING
        exited = self._exit_status()
        if exited is not None:
            self.failure = f"it exited ({exited}) before serving"
        elif time.monotonic() - self.started > SUCCESSOR_TIMEOUT:
            self.failure = f"it did not serve within {SUCCESSOR_TIMEOUT:.0f} s: stopped"
            self.stop()
        else:
            return Outcome.STARTING
        self._close()
        return Outcome.FAILED

    def stop(self) -> None:
        """SIGTERM (and SIGCONT, should it be stopped), then SIGKILL after 10 s; reaped."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
            os.kill(self.pid, signal.SIGCONT)
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if self._exit_status() is not None:
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)

    def _exit_status(self) -> str | None:
        try:
            done, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return "already reaped"
        if done == 0:
            return None
        if os.WIFSIGNALED(status):
            return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
        return f"code {os.waitstatus_to_exitcode(status)}"

    def _close(self) -> None:
        if self.ready_fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self.ready_fd)
            self.ready_fd = -1


def start_successor(relaunch: Relaunch, listener: socket.socket) -> Successor:
    """Fork and re-execute ``relaunch`` with ``listener`` as descriptor 3, the serve lock as
    4 and the write end of a new pipe as 5; the successor, still starting."""
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the successor, until exec
        try:
            os.close(ready_read)
            _exec_successor(relaunch, listener.fileno(), ready_write)
        finally:
            os._exit(127)
    os.close(ready_write)
    os.set_blocking(ready_read, False)
    return Successor(pid, ready_read)


def _exec_successor(relaunch: Relaunch, listener_fd: int, ready_fd: int) -> None:
    parent = os.getppid()
    # moved out of the way first: one of them may sit at 3, 4 or 5 already
    scratch = [fcntl.fcntl(fd, fcntl.F_DUPFD, _SCRATCH_FD)
               for fd in (listener_fd, relaunch.lock_fd, ready_fd)]
    for original in (listener_fd, relaunch.lock_fd, ready_fd):
        with contextlib.suppress(OSError):
            os.set_inheritable(original, False)
    for target, fd in zip((LISTEN_FDS_START, LOCK_FD, READY_FD), scratch, strict=True):
        os.dup2(fd, target, inheritable=True)
    for fd in scratch:
        os.close(fd)
    environ = {name: value for name, value in relaunch.environ.items()
               if name not in (*LISTEN_ENVIRONMENT, *HANDOVER_ENVIRONMENT)}
    environ.update({"LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid()),
                    LOCK_FD_ENV: str(LOCK_FD), READY_FD_ENV: str(READY_FD),
                    FROM_PID_ENV: str(parent)})
    try:
        # the command line this master was started with, no shell involved
        os.execve(relaunch.executable, list(relaunch.argv), environ)  # noqa: S606
    except OSError as exc:
        os.write(2, f"vbios: cannot start the new server {relaunch.executable}:"
                    f" {errno.errorcode.get(exc.errno or 0, exc)}\n".encode())
