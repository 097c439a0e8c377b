"""One complete HTTP request through the WSGI application, in a worker thread.

The front hands over a request whose head and body were received in full and
within their bounds; this module builds its WSGI environ (PEP 3333) and
collects the application's answer. The verified client certificate travels as
a ``PeerCertificate`` at ``SOCKET_ENVIRON_KEY``, the one place
``bios_ws.server.identity`` reads it from; the request's ``CallNote`` at
``CALL_NOTE_KEY``, where the application's answer is described for the metrics and
the access log (``bios_ws.server.calls``).
"""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bios_ws.server.calls import CALL_NOTE_KEY, CallNote
from bios_ws.server.identity import SOCKET_ENVIRON_KEY, WSGIApp

log = logging.getLogger(__name__)

Headers = list[tuple[str, str]]
#: Answered when the application itself fails (it normally answers every error itself).
_FAILED = b"internal error\n"
#: Response headers the front decides itself (framing belongs to the connection).
_FRAMING = frozenset({"content-length", "transfer-encoding", "keep-alive"})


class PeerCertificate:
    """The verified client certificate of a connection, as ``ssl.SSLSocket`` shows it."""

    __slots__ = ("_der",)

    def __init__(self, der: bytes | None) -> None:
        self._der = der

    def getpeercert(self, binary_form: bool = False) -> bytes | None:
        return self._der if binary_form else None


@dataclass(frozen=True)
class Request:
    method: str
    target: bytes
    headers: Sequence[tuple[bytes, bytes]]
    body: bytes
    peer: PeerCertificate
    remote_addr: str
    server_port: int
    #: What the application tells the front about the call (``bios_ws.server.calls``).
    note: CallNote = field(default_factory=CallNote)


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    headers: Headers
    body: bytes


def environ_of(request: Request) -> dict[str, Any]:
    path, _, query = request.target.partition(b"?")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path.decode("latin-1"),
        "QUERY_STRING": query.decode("latin-1"),
        "SERVER_NAME": "localhost",
        "SERVER_PORT": str(request.server_port),
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": request.remote_addr,
        "CONTENT_LENGTH": str(len(request.body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(request.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        SOCKET_ENVIRON_KEY: request.peer,
        CALL_NOTE_KEY: request.note,
    }
    for raw_name, raw_value in request.headers:  # h11 gives lower-case names
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name == "CONTENT_TYPE":
            environ["CONTENT_TYPE"] = value
        elif name != "CONTENT_LENGTH":
            key = "HTTP_" + name
            environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def call_application(app: WSGIApp, request: Request) -> Answer:
    """The application's answer to ``request`` (a 500 if it fails without answering)."""
    started: list[tuple[str, Headers]] = []

    def start_response(status: str, headers: Headers, exc_info: Any = None) -> None:
        started[:] = [(status, headers)]

    try:
        result = app(environ_of(request), start_response)
        try:
            body = b"".join(bytes(chunk) for chunk in result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status_line, headers = started[0]
        code, _, reason = status_line.partition(" ")
        return Answer(int(code), reason, _answer_headers(headers), body)
    except Exception:
        log.exception("the application failed on %s %s", request.method,
                      request.target[:200].decode("latin-1"))
        return Answer(500, "Internal Server Error", [("Content-Type", "text/plain")], _FAILED)


def answer_of(environ: dict[str, Any],
              respond: Callable[[Callable[..., Any]], Iterable[bytes]]) -> Answer:
    """The answer ``respond(start_response)`` makes for the request of ``environ``, as
    ``call_application`` makes it, finished outside the application (a routed call's
    round trip awaited on the loop: ``blocking.AwaitOnLoop``); the call's note is read
    from ``environ`` as the front's middleware reads it."""
    started: list[tuple[str, Headers]] = []

    def start_response(status: str, headers: Headers, exc_info: Any = None) -> None:
        started[:] = [(status, headers)]

    body = b"".join(bytes(chunk) for chunk in respond(start_response))
    note = environ.get(CALL_NOTE_KEY)
    if isinstance(note, CallNote):
        note.read(environ)
    status_line, headers = started[0]
    code, _, reason = status_line.partition(" ")
    return Answer(int(code), reason, _answer_headers(headers), body)


def _answer_headers(headers: Iterable[tuple[str, str]]) -> Headers:
    return [(name, value) for name, value in headers if name.lower() not in _FRAMING]
