"""One server per home: ``<home>/serve.lock``, held by the serving process for its life.

`vbios serve` and `vbios devrun` take an exclusive ``flock`` on the file before
they touch the home's TPM or store, and write their pid in it. A second one,
on any port, is refused naming that pid. The kernel drops the lock when its
holder dies (however it dies), so a file left by a dead process blocks nobody:
its stale pid is simply overwritten. The workers inherit the open file through
``fork`` (a worker outliving its master keeps the home served, and locked);
processes started with ``exec`` (QEMU keepers, swtpm) do not: Python opens
files non-inheritable. A restart hands the open file itself to the new master
(``bios_ws.server.handover``: the lock belongs to the open file, which both masters
share until the old one exits, so no third server can take the home in between);
the new master writes its pid once it serves (``record_pid``).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from bios_ws.errors import AdminError

_MAX_PID_CHARS = 32


class ServeLock:
    """The held lock of one home; ``release`` (or the process's end) lets it go."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, path: Path, home: Path) -> ServeLock:
        """Lock ``path`` (creating it, mode 0644) and write our pid; AdminError naming
        the holder's pid if another process serves ``home``."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise AdminError(f"cannot open the serve lock {path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise AdminError(f"{home} is already served by {who} (lock {path});"
                             " stop that server first, one server per home") from None
        except OSError as exc:
            os.close(fd)
            raise AdminError(f"cannot lock {path}: {exc.strerror or exc}") from None
        lock = cls(path, fd)
        lock.record_pid()
        return lock

    @classmethod
    def inherit(cls, path: Path, fd: int, home: Path) -> ServeLock:
        """The lock of ``path`` handed over on descriptor ``fd`` by the master this one
        replaces; AdminError if ``fd`` is not that file or does not hold its lock."""
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False))
        except OSError as exc:
            raise AdminError(f"cannot check the handed-over serve lock {path}:"
                             f" {exc.strerror or exc}") from None
        if not same:
            raise AdminError(f"descriptor {fd} handed over is not the serve lock {path}")
        try:  # the open file already holds the lock: this changes nothing, or fails
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _read_pid(fd)
            raise AdminError(f"the serve lock handed over does not hold {home}"
                             f" (held by pid {holder})") from None
        return cls(path, fd)

    def fileno(self) -> int:
        if self._fd is None:
            raise ValueError("the serve lock is released")
        return self._fd

    def record_pid(self) -> None:
        """Write this process's pid in the lock file (it names the server to stop)."""
        fd = self.fileno()
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None

    def __enter__(self) -> ServeLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, _MAX_PID_CHARS, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
