"""The access log: one JSON line per call, written by the workers.

A line holds ``time`` (RFC 3339, UTC, milliseconds: when the request head was
received), ``principal`` (``guest:DOMAIN``, ``admin:SUBJECT``, ``anonymous`` or
``refused``), ``operation``, ``outcome`` (``ok``, the fault code, or
``http_STATUS``), ``status``, ``duration_ms`` (head received to answer ready to write),
``request_bytes`` and ``response_bytes`` (bodies), ``peer`` (the client's address)
and ``worker`` (the pid). Never a body, a header, a query or a path: nothing a caller
sent is written but the operation name the contract accepted, so no password, key or
token can reach it (``bios_ws.server.calls``).

Every worker writes the same file. Each line is one ``write(2)`` of at most
``MAX_LINE_BYTES`` on a descriptor opened with ``O_APPEND``: Linux appends each such
write whole at the end of a local file, and on a pipe (``-``: standard error) a write
of at most ``PIPE_BUF`` bytes is atomic too, so lines of several workers never
interleave. Rotation by size, without a coordinator: at most once a second a worker
looks at the size of the file it writes (``fstat``); past ``max_bytes`` it takes an
exclusive ``flock`` on ``FILE.lock``, and if the path still names the file it writes
(another worker may have rotated meanwhile) it renames ``FILE.N-1`` to ``FILE.N`` ...
``FILE`` to ``FILE.1`` (``FILE.BACKUPS`` is dropped) and opens a new ``FILE``. The
other workers see, within a second, that the path names another file (``stat``: its
inode) and reopen it; what they wrote meanwhile is in ``FILE.1``. No line is lost or
torn, and at most ``backups + 1`` files of about ``max_bytes`` each are kept.

Writing never fails a call: a write that fails is counted, logged once per failure
run, and dropped.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import select
import time
from dataclasses import dataclass
from pathlib import Path

from bios_ws.server.calls import Call

log = logging.getLogger(__name__)

#: A line is never longer (PIPE_BUF on Linux is 4096): fields that could grow are cut.
MAX_LINE_BYTES = min(getattr(select, "PIPE_BUF", 4096), 4096)
#: Seconds between two looks at the file's size and name.
CHECK_INTERVAL = 1.0
FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
_MAX_FIELD = 256


def format_line(call: Call, worker: int) -> bytes:
    """The JSON line of ``call`` (``\\n``-terminated, at most ``MAX_LINE_BYTES``)."""
    seconds, millis = divmod(round(call.started * 1000), 1000)
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z",
        "principal": call.principal[:_MAX_FIELD],
        "operation": call.operation[:_MAX_FIELD],
        "outcome": call.outcome[:_MAX_FIELD],
        "status": call.status,
        "duration_ms": round(call.duration * 1000, 3),
        "request_bytes": call.request_bytes,
        "response_bytes": call.response_bytes,
        "peer": call.peer[:_MAX_FIELD],
        "worker": worker,
    }
    line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
    if len(line) > MAX_LINE_BYTES:  # only with absurd text fields: cut them all short
        record.update({key: str(record[key])[:32]
                       for key in ("principal", "operation", "outcome", "peer")})
        line = json.dumps(record, separators=(",", ":")).encode() + b"\n"
    return line


@dataclass(frozen=True)
class Rotation:
    #: Bytes a file reaches before it is rotated, and rotated files kept.
    max_bytes: int = 10 * 1_048_576
    backups: int = 5

    def __post_init__(self) -> None:
        if self.max_bytes < MAX_LINE_BYTES or not 0 <= self.backups <= 1000:
            raise ValueError(f"an access log rotates past at least {MAX_LINE_BYTES} bytes"
                             " and keeps 0 to 1000 rotated files")


class AccessLog:
    """The access log of one worker process (see the module docstring)."""

    def __init__(self, fd: int, path: Path | None, rotation: Rotation | None, *,
                 check_interval: float = CHECK_INTERVAL) -> None:
        self._fd = fd
        self._path = path
        self._rotation = rotation
        self._check_interval = check_interval
        self._next_check = 0.0
        self._failing = False
        self.dropped = 0

    @classmethod
    def to_file(cls, path: Path, rotation: Rotation = Rotation(), *,
                check_interval: float = CHECK_INTERVAL) -> AccessLog:
        """The log at ``path`` (its directory made 0700 if missing); its size and name are
        looked at every ``check_interval`` seconds."""
        path.parent.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        return cls(_open(path), path, rotation, check_interval=check_interval)

    @classmethod
    def to_stderr(cls) -> AccessLog:
        return cls(os.dup(2), None, None)

    def write(self, call: Call) -> None:
        line = format_line(call, os.getpid())
        if self._path is not None and time.monotonic() >= self._next_check:
            self._next_check = time.monotonic() + self._check_interval
            self._follow()
        try:
            os.write(self._fd, line)
        except OSError as exc:
            self.dropped += 1
            if not self._failing:
                log.warning("the access log cannot be written (%s): lines are dropped",
                            exc.strerror)
            self._failing = True
            return
        self._failing = False

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _follow(self) -> None:
        """Reopen the file if another worker rotated it; rotate it if it is too large."""
        assert self._path is not None and self._rotation is not None
        try:
            if not _same_file(self._path, self._fd):
                self._reopen()
            elif os.fstat(self._fd).st_size >= self._rotation.max_bytes:
                self._rotate()
        except OSError as exc:
            log.warning("the access log %s cannot be rotated: %s", self._path, exc.strerror)

    def _rotate(self) -> None:
        assert self._path is not None and self._rotation is not None
        path = self._path
        lock = os.open(f"{path}.lock", os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _same_file(path, self._fd):  # nobody rotated it while we waited
                rotate_files(path, self._rotation.backups)
            self._reopen()
        finally:
            os.close(lock)  # releases the flock

    def _reopen(self) -> None:
        assert self._path is not None
        fresh = _open(self._path)
        os.close(self._fd)
        self._fd = fresh


def rotate_files(path: Path, backups: int) -> None:
    """``path.N-1`` -> ``path.N`` ... ``path`` -> ``path.1``; with no backups, remove it."""
    if backups == 0:
        path.unlink(missing_ok=True)
        return
    for number in range(backups - 1, 0, -1):
        older = Path(f"{path}.{number}")
        if older.exists():
            os.replace(older, f"{path}.{number + 1}")
    if path.exists():
        os.replace(path, f"{path}.1")


def _open(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)


def _same_file(path: Path, fd: int) -> bool:
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    written = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (written.st_dev, written.st_ino)
