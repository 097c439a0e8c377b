"""The HTTP front in-process: a ``Worker`` on a loopback socket, in a thread of its own.

Connections are made with the standard library only (``socket`` + ``ssl``), so a test
controls every byte: half a ClientHello, half a head, a slow body, two pipelined
requests. The application records what reached it.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bios_ws.blocking import may_block
from bios_ws.home import Home
from bios_ws.server.exchange import Refuse
from bios_ws.server.identity import SOCKET_ENVIRON_KEY
from bios_ws.server.options import Bounds, bind_listener
from bios_ws.server.telemetry import WorkerTelemetry
from bios_ws.server.tls import ServerTls
from bios_ws.server.worker import Worker
from bios_ws.soap.guard import http_refusal

TIMEOUT = 10.0


@dataclass
class Recorder:
    """A WSGI application that answers the body's length and records each call; with a
    ``delay`` it takes that long, on a pool thread (it says so before anything else)."""

    delay: float = 0.0
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if self.delay:
            may_block("a slow call")
        body = environ["wsgi.input"].read()
        peer = environ[SOCKET_ENVIRON_KEY].getpeercert(binary_form=True)
        self.calls.append({"method": environ["REQUEST_METHOD"], "body": body,
                           "peer": peer, "expect": environ.get("HTTP_EXPECT")})
        if self.delay:
            time.sleep(self.delay)
        answer = f"{len(body)} bytes\n".encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(answer)))])
        return [answer]


@dataclass
class RunningFront:
    worker: Worker
    loop: asyncio.AbstractEventLoop
    address: tuple[str, int]
    home: Home

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.worker.stop)

    def tcp(self) -> socket.socket:
        return socket.create_connection(self.address, timeout=TIMEOUT)

    def client_context(self, bundle: Path | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.home.ca_cert))
        chosen = self.home.admin_dir if bundle is None else bundle
        context.load_cert_chain(str(chosen / "cert.pem"), str(chosen / "key.pem"))
        return context

    def tls(self, bundle: Path | None = None) -> ssl.SSLSocket:
        return self.client_context(bundle).wrap_socket(self.tcp(), server_hostname="127.0.0.1")

    def in_loop(self, action: Callable[[], Any]) -> Any:
        """Run ``action`` in the worker's loop thread; its result."""
        future = asyncio.run_coroutine_threadsafe(_call(action), self.loop)
        return future.result(TIMEOUT)


async def _call(action: Callable[[], Any]) -> Any:
    return action()


@contextmanager
def running_front(home: Home, app: Any, bounds: Bounds, *, threads: int = 4,
                  drain_timeout: float = 5.0, refuse: Refuse = http_refusal,
                  telemetry: WorkerTelemetry | None = None) -> Iterator[RunningFront]:
    tls = ServerTls.of(home, home.key_passphrase("server"))
    worker = Worker(app, tls=tls, bounds=bounds, threads=threads,
                    graceful_timeout=drain_timeout, refuse=refuse, telemetry=telemetry)
    listener = bind_listener("127.0.0.1:0")
    listener.setblocking(False)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(
        target=lambda: loop.run_until_complete(worker.serve(listener, on_signals=False)),
        name="front-under-test", daemon=True)
    thread.start()
    front = RunningFront(worker, loop, listener.getsockname()[:2], home)
    try:
        yield front
    finally:
        front.stop()
        thread.join(TIMEOUT + drain_timeout)
        loop.close()
        listener.close()


def request(path: str = "/", body: bytes = b"", *, method: str = "POST",
            headers: Iterable[str] = ()) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if method != "GET":
        lines.append(f"Content-Length: {len(body)}")
    lines.extend(headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def read_response(sock: socket.socket, *, to_head: bool = False,
                  ) -> tuple[int, dict[str, str], bytes]:
    """One response (Content-Length framed; ``to_head``: of a HEAD request, no body) from
    ``sock``: status, headers, body. Reads no byte beyond it (the head byte by byte), so
    pipelined responses stay readable."""
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            raise ConnectionError(f"closed before a whole response head: {head!r}")
        head += byte
    rest = b""
    status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = 0 if to_head else int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(length - len(rest))
        if not chunk:
            raise ConnectionError("closed in the middle of a response body")
        rest += chunk
    return int(status_line.split()[1]), headers, rest


def closed_by_server(sock: socket.socket, within: float) -> float:
    """Seconds until the server closed ``sock`` (reading EOF or a reset); fails after
    ``within`` seconds without."""
    sock.settimeout(within)
    start = time.monotonic()
    try:
        while sock.recv(65536):
            pass
    except (ConnectionResetError, ssl.SSLError):
        pass
    return time.monotonic() - start
