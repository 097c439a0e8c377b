"""Processes of QEMU machines under test: find them by their machine directory, stop them
by pid, and EFI Shell scripts for guests that act on their own."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from bios_ws.platform.qemu.layout import process_argv


def processes_of(machines_dir: Path) -> list[int]:
    """Live keepers and QEMUs whose command line names a path under ``machines_dir``."""
    prefix = str(machines_dir)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        argv = process_argv(int(entry))
        if any(prefix in arg for arg in argv) and _state(int(entry)) != "Z":
            found.append(int(entry))
    return sorted(found)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return "Z"


def alive(pid: int) -> bool:
    """Running (not gone, not a zombie)."""
    return _state(pid) != "Z"


def kill_all(machines_dir: Path) -> list[int]:
    """SIGKILL, pid by pid, every process still running for ``machines_dir``; the pids."""
    left = processes_of(machines_dir)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in left) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def shell_disk(directory: Path, *commands: str) -> Path:
    """A directory holding ``startup.nsh``: OVMF's built-in EFI Shell runs it from a FAT
    drive after a short countdown when the store has nothing else to boot."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "startup.nsh").write_bytes(("\r\n".join(commands) + "\r\n").encode())
    return directory
