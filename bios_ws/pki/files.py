"""Writing key material safely, and finding key material left in clear.

Every file is written atomically: a temporary file in the same directory,
created with its final mode from the first byte (``os.open`` with the mode,
never a chmod after writing), fsync'd, then renamed over the target.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

from bios_ws.errors import AdminError

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644
DIR_MODE = 0o700

_CLEAR_KEY = re.compile(rb"-----BEGIN (?:(?:RSA|EC|DSA|OPENSSH) )?PRIVATE KEY-----\r?\n(.{0,80})",
                        re.DOTALL)
_MAX_SCAN_BYTES = 4 * 1024 * 1024


def ensure_dir(path: Path, mode: int = DIR_MODE) -> None:
    """Create ``path`` and its missing parents, each new one with ``mode``."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    try:
        for directory in reversed(missing):
            directory.mkdir(mode=mode, exist_ok=True)
    except OSError as exc:
        raise AdminError(f"cannot create directory {path}: {exc.strerror or exc}") from None


def write_file_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` atomically; the file has ``mode`` from its creation."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        try:
            # The umask may only have removed bits; set the exact mode before any byte.
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise AdminError(f"cannot write {path}: {exc.strerror or exc}") from None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_clear_private_key_pem(data: bytes) -> bool:
    """True if ``data`` holds a PEM private key that is not encrypted."""
    for match in _CLEAR_KEY.finditer(data):
        if not match.group(1).startswith(b"Proc-Type: 4,ENCRYPTED"):
            return True
    return False


def find_clear_private_keys(root: Path, *, excluded: tuple[Path, ...] = ()) -> list[Path]:
    """Every regular file under ``root`` (outside ``excluded``) holding a clear private key."""
    found: list[Path] = []
    skip = tuple(p.absolute() for p in excluded)
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath).absolute()
        dirnames[:] = sorted(d for d in dirnames if (here / d) not in skip)
        for name in sorted(filenames):
            candidate = here / name
            if candidate in skip or candidate.is_symlink() or not candidate.is_file():
                continue
            try:
                with candidate.open("rb") as handle:
                    data = handle.read(_MAX_SCAN_BYTES)
            except OSError:
                continue
            if is_clear_private_key_pem(data):
                found.append(candidate)
    return found
