"""A machine's serial console, kept in two rotating files of bounded size.

The keeper appends what QEMU prints to ``console.log``; when the next chunk
would make it larger than half the budget, ``console.log`` becomes
``console.log.1`` (the older half is dropped) and a new ``console.log`` starts.
Readers take the last bytes across both files.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


class ConsoleLog:
    """The writing side (the keeper): ``budget`` bytes at most across both files."""

    def __init__(self, path: Path, budget: int) -> None:
        self._path = path
        self._half = max(budget // 2, 1)
        self._lock = threading.Lock()  # the pumps of two QEMUs may overlap at a reboot
        self._fd = self._open()

    def _open(self) -> int:
        return os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW,
                       0o600)

    def write(self, data: bytes) -> None:
        if not data:
            return
        data = data[-self._half:]
        with self._lock:
            if self._fd < 0:
                return
            if os.fstat(self._fd).st_size + len(data) > self._half:
                os.close(self._fd)
                os.replace(self._path, rotated(self._path))
                self._fd = self._open()
            os.write(self._fd, data)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


def rotated(path: Path) -> Path:
    return path.with_name(path.name + ".1")


def read_console(path: Path, limit: int) -> bytes:
    """The last ``limit`` bytes of the console (older file first)."""
    if limit <= 0:
        return b""
    parts = []
    for name in (rotated(path), path):
        try:
            with name.open("rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(max(size - limit, 0))
                parts.append(handle.read(limit))
        except FileNotFoundError:
            continue
    return b"".join(parts)[-limit:]
