"""The keeper's control protocol: one JSON object per line over a unix socket.

Requests (any process may send them; the keeper answers one at a time)::

    {"op": "status"}
    {"op": "power_off", "graceful": true|false, "cause": "<ResetCause>"}
    {"op": "restart",   "graceful": true|false, "cause": "<ResetCause>"}
    {"op": "pause"} | {"op": "resume"} | {"op": "nmi"}

Answers::

    {"ok": true, "state": "<PowerState>", "qemu_pid": <int>|null}
    {"ok": false, "error": "<one line>"}

The keeper answers on its control thread (``Server``): ``status`` at once, every other
request once its main thread has carried it out.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_MESSAGE = 64 * 1024
OPS = frozenset({"status", "power_off", "restart", "pause", "resume", "nmi"})
#: Seconds a request waits for the keeper's main thread.
REQUEST_TIMEOUT = 120.0

log = logging.getLogger("bios_ws.platform.qemu")

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


class Reply:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.answer: Message = {}

    def give(self, answer: Message) -> None:
        self.answer = answer
        self.done.set()


@dataclass(frozen=True)
class Request:
    """A request for the keeper's main thread, which gives its answer to ``reply``."""

    message: Message
    reply: Reply


class Server:
    """The keeper's control thread on ``listener``: answers ``status`` itself (``status``
    is called from this thread), posts every other request as a ``Request`` and waits for
    the main thread's answer (``REQUEST_TIMEOUT`` at most). Once stopping, it answers
    everything with the status."""

    def __init__(self, listener: socket.socket, post: Callable[[object], None],
                 status: Callable[[], Message]) -> None:
        self._listener = listener
        self._post = post
        self._status = status
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _serve(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                try:
                    self._answer(conn)
                except (OSError, ValueError, EOFError) as exc:
                    log.debug("a control connection failed: %s", exc)

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(5.0)
        message = json.loads(read_line(conn))
        if not isinstance(message, dict) or message.get("op") not in OPS:
            send(conn, {"ok": False, "error": "unknown request"})
            return
        if message["op"] == "status" or self._stopping.is_set():
            send(conn, self._status())
            return
        reply = Reply()
        self._post(Request(message, reply))
        if not reply.done.wait(REQUEST_TIMEOUT):
            send(conn, {"ok": False, "error": "the keeper is busy; try again"})
            return
        send(conn, reply.answer)
