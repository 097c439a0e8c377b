"""The keeper's control protocol: one JSON object per line over a unix socket.

Requests (any process may send them; the keeper answers one at a time)::

    {"op": "status"}
    {"op": "power_off", "graceful": true|false, "cause": "<ResetCause>"}
    {"op": "restart",   "graceful": true|false, "cause": "<ResetCause>"}
    {"op": "pause"} | {"op": "resume"} | {"op": "nmi"}

Answers::

    {"ok": true, "state": "<PowerState>", "qemu_pid": <int>|null}
    {"ok": false, "error": "<one line>"}
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

MAX_MESSAGE = 64 * 1024
OPS = frozenset({"status", "power_off", "restart", "pause", "resume", "nmi"})

Message = dict[str, Any]


class KeeperGone(Exception):
    """No keeper listens on the socket (it has exited, or is exiting)."""


def ask(path: Path, request: Message, *, timeout: float) -> Message:
    """Send one request and return the answer. ``KeeperGone`` when nobody listens or the
    keeper closed the connection without answering; TimeoutError when it is too slow."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise KeeperGone(str(exc)) from None
        sock.sendall(json.dumps(request).encode("utf-8") + b"\n")
        line = read_line(sock)
    except TimeoutError:
        raise
    except (ConnectionError, EOFError) as exc:
        raise KeeperGone(str(exc) or "closed") from None
    finally:
        sock.close()
    answer = json.loads(line)
    if not isinstance(answer, dict):
        raise ValueError("the keeper's answer is not an object")
    return answer


def read_line(sock: socket.socket) -> bytes:
    """One line (without its newline), at most ``MAX_MESSAGE`` bytes; EOFError if none."""
    data = b""
    while b"\n" not in data:
        if len(data) > MAX_MESSAGE:
            raise ValueError("message too long")
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError("closed without an answer")
        data += chunk
    return data.partition(b"\n")[0]


def send(sock: socket.socket, message: Message) -> None:
    sock.sendall(json.dumps(message).encode("utf-8") + b"\n")


def listen(path: Path) -> socket.socket:
    """The control socket, mode 0600, a stale one replaced."""
    path.unlink(missing_ok=True)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))  # 0700 under the keeper's umask, in a 0700 directory
    path.chmod(0o600)
    listener.listen(16)
    return listener
