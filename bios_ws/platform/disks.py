"""Disks a machine may be given: checked the same way for every machine kind."""

from __future__ import annotations

import os
from pathlib import Path

from bios_ws.errors import MachineError


def check_disk(path: Path) -> Path:
    """``path`` made absolute if it is a readable image file or directory; else
    MachineError saying what is wrong (nothing is attached)."""
    path = Path(path).expanduser().absolute()
    if not path.exists():
        raise MachineError(f"the disk {path} does not exist")
    if not (path.is_file() or path.is_dir()):
        raise MachineError(f"the disk {path} is neither an image file nor a directory")
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise MachineError(f"the disk {path} is not readable")
    if any(c in str(path) for c in ":,\n"):
        raise MachineError(f"the disk {path}: QEMU cannot take a path with ':', ',' or a"
                           " newline")
    if path.is_file():
        try:
            with path.open("rb") as image:
                image.read(1)
        except OSError as exc:
            raise MachineError(f"the disk {path} is not readable: {exc.strerror}") from None
    return path


def check_network_boot(tftp_dir: Path | None, bootfile: str | None,
                       http_dir: Path | None) -> tuple[Path | None, str | None, Path | None]:
    """A TFTP directory with an optional boot file inside it, and an HTTP directory."""
    http = None if http_dir is None else _served_directory(http_dir, "HTTP boot")
    if tftp_dir is None:
        if bootfile is not None:
            raise MachineError("a boot file needs a TFTP directory")
        return None, None, http
    directory = _served_directory(tftp_dir, "TFTP")
    if bootfile is not None and (not bootfile or ".." in bootfile.split("/")
                                 or bootfile.startswith("/")
                                 or any(c in bootfile for c in ",\n")):
        raise MachineError(f"invalid boot file name {bootfile!r}")
    if bootfile is not None and not (directory / bootfile).is_file():
        raise MachineError(f"the boot file {bootfile} is not in {directory}")
    return directory, bootfile, http


def _served_directory(path: Path, what: str) -> Path:
    directory = Path(path).expanduser().absolute()
    if not directory.is_dir() or not os.access(directory, os.R_OK | os.X_OK):
        raise MachineError(f"the {what} directory {directory} is not a readable directory")
    if any(c in str(directory) for c in ":,\n "):
        raise MachineError(f"the {what} directory {directory}: QEMU cannot take a path with"
                           " ':', ',', a space or a newline")
    return directory
