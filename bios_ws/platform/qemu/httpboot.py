"""A guest's HTTP boot server: files from one directory, one request per run, on stdin/out.

A guest's user-mode network is closed (``restrict=on``: no connection leaves it,
so a guest can never reach the host's own services, such as its TPM on
loopback). For HTTP boot, QEMU forwards connections to ``HTTP_BOOT_ADDRESS``
port 80 to this program (``guestfwd=...-cmd:``), one process per connection,
the connection on stdin and stdout. It answers one GET or HEAD for a regular
file directly inside the directory the admin named, and nothing else: no
listing, no subdirectories, no ``..``, no symbolic links out.

Usage (by QEMU): python -P -m bios_ws.platform.qemu.httpboot DIR
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import BinaryIO

#: Where a guest finds its HTTP boot server (HttpDev1Uri: http://10.0.2.100/FILE).
HTTP_BOOT_ADDRESS = "10.0.2.100"
MAX_HEAD_BYTES = 8192
CHUNK = 1 << 16


def answer(directory: Path, incoming: BinaryIO, outgoing: BinaryIO) -> int:
    """Serve one request; the HTTP status sent."""
    head = _read_head(incoming)
    parts = head.split(b"\r\n", 1)[0].split(b" ") if head else []
    if len(parts) != 3 or parts[0] not in (b"GET", b"HEAD"):
        return _send(outgoing, 400, b"bad request\n")
    name = parts[1].decode("ascii", errors="replace").split("?", 1)[0].lstrip("/")
    path = directory / name
    if not name or "/" in name or name in (".", "..") or name.startswith("."):
        return _send(outgoing, 404, b"not found\n")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return _send(outgoing, 404, b"not found\n")
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return _send(outgoing, 404, b"not found\n")
    with os.fdopen(fd, "rb") as file:
        _head(outgoing, 200, info.st_size, "application/efi")
        if parts[0] == b"GET":
            while chunk := file.read(CHUNK):
                outgoing.write(chunk)
        outgoing.flush()
    return 200


def _read_head(incoming: BinaryIO) -> bytes:
    head = b""
    while not head.endswith(b"\r\n\r\n") and len(head) < MAX_HEAD_BYTES:
        byte = incoming.read(1)
        if not byte:
            break
        head += byte
    return head


def _head(outgoing: BinaryIO, status: int, length: int, kind: str) -> None:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
    outgoing.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {kind}\r\n"
                   f"Content-Length: {length}\r\nConnection: close\r\n\r\n".encode("ascii"))


def _send(outgoing: BinaryIO, status: int, body: bytes) -> int:
    _head(outgoing, status, len(body), "text/plain")
    outgoing.write(body)
    outgoing.flush()
    return status


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: python -m bios_ws.platform.qemu.httpboot DIR", file=sys.stderr)
        return 2
    answer(Path(argv[0]), sys.stdin.buffer, sys.stdout.buffer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
