"""A small QMP client: JSON lines over QEMU's monitor unix socket.

One connection carries commands from several threads and QEMU's events: a
reader thread hands each answer to the command waiting for its ``id`` and each
event to a callback, so a command that times out (a hung QEMU) leaves the
connection usable, and its late answer is dropped. When QEMU goes away the
reader calls ``on_close`` once, after every event QEMU sent.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_MAX_LINE = 1024 * 1024

Message = dict[str, Any]


class QmpError(Exception):
    """QEMU answered a command with an error, or could not be reached."""


class QmpClosed(QmpError):
    """The connection is gone (QEMU exited)."""


class QmpTimeout(QmpError):
    """QEMU did not answer in time."""


class Qmp:
    """A negotiated QMP connection (``connect``); ``execute`` from any thread."""

    def __init__(self, sock: socket.socket, on_event: Callable[[Message], None],
                 on_close: Callable[[], None]) -> None:
        self._sock = sock
        self._on_event = on_event
        self._on_close = on_close
        self._ids = itertools.count(1)
        self._waiting: dict[str, tuple[threading.Event, list[Message]]] = {}
        self._guard = threading.Lock()
        self._send_lock = threading.Lock()
        self._closed = False
        self._buffer = b""
        self._thread = threading.Thread(target=self._read_loop, name="qmp-reader", daemon=True)

    @classmethod
    def connect(cls, path: Path, *, on_event: Callable[[Message], None],
                on_close: Callable[[], None], timeout: float,
                alive: Callable[[], bool]) -> Qmp:
        """Connect to ``path`` (waiting for QEMU to create it while ``alive()``), read the
        greeting, negotiate capabilities, then start reading events."""
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(path))
                break
            except OSError:
                sock.close()
                if not alive():
                    raise QmpClosed("QEMU exited before its monitor was ready") from None
                if time.monotonic() > deadline:
                    raise QmpTimeout(f"no QMP monitor at {path}") from None
                time.sleep(0.02)
        qmp = cls(sock, on_event, on_close)
        try:
            sock.settimeout(max(deadline - time.monotonic(), 1.0))
            greeting = qmp._read_message()
            if "QMP" not in greeting:
                raise QmpError(f"not a QMP monitor: {greeting!r:.100}")
            qmp._send({"execute": "qmp_capabilities", "id": "caps"})
            answer = qmp._read_message()
            if "return" not in answer:
                raise QmpError(f"capabilities refused: {answer!r:.200}")
            sock.settimeout(None)
        except (OSError, ValueError) as exc:
            sock.close()
            raise QmpClosed(f"QMP negotiation failed: {exc}") from None
        except QmpError:
            sock.close()
            raise
        qmp._thread.start()
        return qmp

    def execute(self, command: str, arguments: Message | None = None, *,
                timeout: float = 10.0) -> Any:
        """Run ``command`` and return its ``return`` value."""
        ident = f"c{next(self._ids)}"
        done = threading.Event()
        box: list[Message] = []
        with self._guard:
            if self._closed:
                raise QmpClosed("QEMU's monitor is closed")
            self._waiting[ident] = (done, box)
        message: Message = {"execute": command, "id": ident}
        if arguments:
            message["arguments"] = arguments
        try:
            self._send(message)
            if not done.wait(timeout):
                raise QmpTimeout(f"QEMU did not answer {command} within {timeout:g} s")
        except OSError as exc:
            raise QmpClosed(f"QEMU's monitor is gone: {exc.strerror or exc}") from None
        finally:
            with self._guard:
                self._waiting.pop(ident, None)
        if not box:
            raise QmpClosed(f"QEMU went away during {command}")
        answer = box[0]
        if "error" in answer:
            error = answer["error"]
            desc = error.get("desc", error) if isinstance(error, dict) else error
            raise QmpError(f"{command}: {desc}")
        return answer.get("return")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    @property
    def closed(self) -> bool:
        return self._closed

    def _send(self, message: Message) -> None:
        data = json.dumps(message).encode("utf-8") + b"\n"
        with self._send_lock:
            self._sock.sendall(data)

    def _read_message(self) -> Message:
        while b"\n" not in self._buffer:
            if len(self._buffer) > _MAX_LINE:
                raise ValueError("a QMP message is too long")
            chunk = self._sock.recv(65536)
            if not chunk:
                raise EOFError
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message = json.loads(line)
        if not isinstance(message, dict):
            raise ValueError("a QMP message is not an object")
        return message

    def _read_loop(self) -> None:
        try:
            while True:
                message = self._read_message()
                ident = message.get("id")
                if isinstance(ident, str) and ("return" in message or "error" in message):
                    with self._guard:
                        waiter = self._waiting.get(ident)
                    if waiter is not None:
                        waiter[1].append(message)
                        waiter[0].set()
                elif "event" in message:
                    self._on_event(message)
        except (OSError, ValueError, EOFError):
            pass
        finally:
            with self._guard:
                self._closed = True
                waiters = list(self._waiting.values())
            for done, _ in waiters:
                done.set()
            self._sock.close()
            self._on_close()
