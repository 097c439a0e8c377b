"""Forwarding: a guest's call of a routed capability goes to the remote vBIOS serving it.

``Forwarder`` wraps the SOAP application, inside ``PeerIdentity`` (which set the
principal). For a guest whose domain has any route (``RoutingTable.routes_any``, read
per call from the store: ``service.routing.RouteKeeper``), it reads the request body,
finds the operation in the envelope (the one hardened parser), and, when that
operation's capability (``capabilities.operation_capabilities``) goes to a remote for
the domain, posts the body unchanged to the remote's URL over mutual TLS with this
host's credential there and ``X-Vbios-On-Behalf-Of: <domain>``. The remote's answer
(status, content type, body) is relayed as it came: values, typed faults and versions
are the remote's. Every other request goes to the local application untouched (a body
read here is handed on).

A remote that cannot be reached, refuses the handshake or the credential, closes
without an answer, or does not answer within ``timeout`` seconds (each wait, and the
whole call checked between reads) gives a ``RemoteUnavailable`` fault: never a hang,
never a local answer. An answer that is not SOAP (no ``text/xml``) or larger than the
bound is refused the same way. Each remote has its own pool of kept-alive connections
(``RemotePool``): a routed call costs one request on a warm TLS connection.
"""

from __future__ import annotations

import http.client
import io
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bios_ws.blocking import may_block
from bios_ws.domain.principal import Principal, Role
from bios_ws.domain.routing import Remote, RoutingTable
from bios_ws.errors import RemoteUnavailable, VbiosError
from bios_ws.soap import faults
from bios_ws.soap.app import DEFAULT_MAX_BODY_BYTES, PRINCIPAL_ENVIRON_KEY
from bios_ws.soap.envelope import check_envelope
from bios_ws.soap.faults import CONTENT_TYPE, FAULT_STATUS
from bios_ws.soap.guard import FAULT_ENVIRON_KEY, OPERATION_ENVIRON_KEY
from bios_ws.soap.types import TNS
from bios_ws.soap.xmlparser import parse_xml

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
#: The header naming the domain a host speaks for (the remote checks the host may).
ON_BEHALF_OF = "X-Vbios-On-Behalf-Of"
DEFAULT_TIMEOUT = 10.0
#: The largest answer relayed (a System Event Log or an event page is well below).
MAX_ANSWER = 16 * 1_048_576
IDLE_CONNECTIONS = 8
_CHUNK = 65536
#: How a kept-alive connection the remote closed while it was idle fails (the remote's
#: idle bound, or its restart): the request goes once more, on a new connection.
_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
          ssl.SSLEOFError, ssl.SSLZeroReturnError)


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    content_type: str
    body: bytes


class RemotePool:
    """Kept-alive HTTPS connections to one remote with one TLS client context."""

    def __init__(self, remote: Remote, context: ssl.SSLContext, *, timeout: float,
                 idle: int = IDLE_CONNECTIONS) -> None:
        parts = urlsplit(remote.url)
        if parts.hostname is None:
            raise ValueError(f"remote URL {remote.url!r} names no host")
        self.remote = remote
        self._host = parts.hostname
        self._port = parts.port or 443
        self._path = parts.path or "/"
        self._context = context
        self._timeout = timeout
        self._idle_max = idle
        self._idle: list[http.client.HTTPSConnection] = []
        self._lock = threading.Lock()

    def post(self, body: bytes, headers: Mapping[str, str], *, path: str | None = None,
             accept: str = "text/xml") -> Answer:
        """The remote's answer to a POST of ``body`` to ``path`` (the remote's SOAP
        endpoint by default), which must be of type ``accept``; RemoteUnavailable within
        about ``timeout`` otherwise."""
        deadline = time.monotonic() + self._timeout
        target = self._path if path is None else path
        conn, reused = self._take()
        try:
            try:
                answer = self._exchange(conn, target, body, headers, deadline, accept)
            except _STALE as exc:
                if not reused:
                    raise _unavailable(self.remote, exc) from None
                # the remote closed a kept-alive connection before reading this request
                conn.close()
                conn = self._new()
                answer = self._exchange(conn, target, body, headers, deadline, accept)
        except RemoteUnavailable:
            conn.close()
            raise
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            conn.close()
            raise _unavailable(self.remote, exc) from None
        self._give_back(conn, answer)
        return answer

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _take(self) -> tuple[http.client.HTTPSConnection, bool]:
        with self._lock:
            if self._idle:
                return self._idle.pop(), True
        return self._new(), False

    def _new(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout,
                                           context=self._context)

    def _exchange(self, conn: http.client.HTTPSConnection, path: str, body: bytes,
                  headers: Mapping[str, str], deadline: float, accept: str) -> Answer:
        conn.timeout = _remaining(self.remote, deadline)
        if conn.sock is not None:
            conn.sock.settimeout(conn.timeout)
        conn.request("POST", path, body=body, headers=dict(headers))
        self._bound(conn, deadline)
        response = conn.getresponse()
        chunks: list[bytes] = []
        size = 0
        while True:
            self._bound(conn, deadline)
            chunk = response.read1(_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > MAX_ANSWER:
                raise RemoteUnavailable(f"remote {self.remote.name} answered more than"
                                        f" {MAX_ANSWER} bytes")
            chunks.append(chunk)
        response.close()  # read whole: the connection takes the next request
        content_type = response.getheader("Content-Type", "")
        if not content_type.lower().startswith(accept):
            raise RemoteUnavailable(f"remote {self.remote.name} answered HTTP"
                                    f" {response.status} without a {accept} body")
        answer = Answer(response.status, response.reason, content_type, b"".join(chunks))
        if response.will_close:
            conn.close()
        return answer

    def _bound(self, conn: http.client.HTTPSConnection, deadline: float) -> None:
        """The next wait on the socket ends at the deadline."""
        if conn.sock is not None:
            conn.sock.settimeout(_remaining(self.remote, deadline))

    def _give_back(self, conn: http.client.HTTPSConnection, answer: Answer) -> None:
        if conn.sock is None:
            return
        with self._lock:
            if len(self._idle) < self._idle_max:
                self._idle.append(conn)
                return
        conn.close()


def _remaining(remote: Remote, deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise RemoteUnavailable(f"remote {remote.name} did not answer in time")
    return left


def _unavailable(remote: Remote, exc: BaseException) -> RemoteUnavailable:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return RemoteUnavailable(f"remote {remote.name} did not answer in time")
    log.info("remote %s (%s) unavailable: %s", remote.name, remote.url, exc)
    return RemoteUnavailable(f"remote {remote.name} is unavailable")


#: The TLS client context of a remote (this host's credential there, its CA pinned).
ContextFor = Callable[[Remote], ssl.SSLContext]


#: Seconds a credential that could not be loaded is not tried again (loading it may
#: unseal the server key's passphrase in the TPM: not once per call).
CREDENTIAL_RETRY = 5.0


class RemotePools:
    """One pool per remote, rebuilt when the remote's record changes (a new credential)."""

    def __init__(self, context_for: ContextFor, *, timeout: float = DEFAULT_TIMEOUT,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._context_for = context_for
        self._timeout = timeout
        self._clock = clock
        self._pools: dict[str, RemotePool] = {}
        self._failed: dict[Remote, float] = {}
        self._lock = threading.Lock()

    def pool(self, remote: Remote) -> RemotePool:
        with self._lock:
            pool = self._pools.get(remote.name)
            if pool is not None and pool.remote == remote:
                return pool
            failed_at = self._failed.get(remote)
        unusable = RemoteUnavailable(f"remote {remote.name} is unavailable: this host's"
                                     " credential there cannot be used")
        if failed_at is not None and self._clock() - failed_at < CREDENTIAL_RETRY:
            raise unusable
        try:
            context = self._context_for(remote)
        except Exception as exc:
            log.warning("remote %s: no TLS client context: %s", remote.name, exc)
            with self._lock:
                self._failed = {remote: self._clock()}  # one remembered: the last
            raise unusable from None
        fresh = RemotePool(remote, context, timeout=self._timeout)
        with self._lock:
            old = self._pools.get(remote.name)
            self._pools[remote.name] = fresh
        if old is not None:
            old.close()
        return fresh

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


class Forwarder:
    """WSGI middleware: guest calls of routed capabilities go to their remote."""

    def __init__(self, app: WSGIApp, *, table: Callable[[], RoutingTable],
                 operations: Mapping[str, str], pools: RemotePools,
                 max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self._table = table
        self._clark = {f"{{{TNS}}}{name}": capability for name, capability in
                       operations.items()}
        self._pools = pools
        self._max_body = max_body_bytes

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        principal = environ.get(PRINCIPAL_ENVIRON_KEY)
        if (not isinstance(principal, Principal) or principal.role is not Role.GUEST
                or principal.domain_id is None
                or str(environ.get("REQUEST_METHOD", "")).upper() != "POST"):
            return self.app(environ, start_response)
        domain = principal.domain_id
        try:
            table = self._table()
        except VbiosError as error:  # the store: the local application would fail alike
            return _fault(environ, start_response, error)
        if not table.routes_any(domain):
            return self.app(environ, start_response)
        body = self._read_body(environ)
        if body is None:
            return self.app(environ, start_response)  # the guard answers 413 / 400
        environ["wsgi.input"] = io.BytesIO(body)
        found = self._operation(body, environ.get("CONTENT_TYPE"))
        if found is None:
            return self.app(environ, start_response)
        operation, capability = found
        target = table.target_for(capability, domain)
        if target is None:
            return self.app(environ, start_response)
        remote = table.remotes.get(target)
        if remote is None:  # not kept by the store (remove refuses it): still never local
            return _fault(environ, start_response,
                          RemoteUnavailable(f"remote {target} is unavailable"))
        may_block(f"{operation} forwarded to remote {remote.name}")
        environ[OPERATION_ENVIRON_KEY] = operation
        headers = {"Content-Type": str(environ.get("CONTENT_TYPE") or CONTENT_TYPE),
                   ON_BEHALF_OF: domain}
        action = environ.get("HTTP_SOAPACTION")
        if action is not None:
            headers["SOAPAction"] = str(action)
        try:
            answer = self._pools.pool(remote).post(body, headers)
        except RemoteUnavailable as error:
            return _fault(environ, start_response, error)
        start_response(f"{answer.status} {answer.reason}",
                       [("Content-Type", answer.content_type),
                        ("Content-Length", str(len(answer.body))),
                        ("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")])
        return [answer.body]

    def _read_body(self, environ: dict[str, Any]) -> bytes | None:
        raw = str(environ.get("CONTENT_LENGTH") or "").strip()
        if not raw.isdigit() or int(raw) > self._max_body:
            return None
        stream = environ.get("wsgi.input")
        if stream is None:
            return None
        length = int(raw)
        chunks: list[bytes] = []
        received = 0
        while received < length:
            chunk = stream.read(min(_CHUNK, length - received))
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
        return b"".join(chunks)

    def _operation(self, body: bytes, content_type: object) -> tuple[str, str] | None:
        """(operation, capability) the envelope names, or None: let the local guard
        answer what is wrong with it (the same fault the remote would give)."""
        _, _, params = str(content_type or "").partition(";")
        charset = None
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset":
                charset = value.strip().strip('"')
        try:
            envelope = check_envelope(parse_xml(body, charset=charset), self._clark)
        except Exception:
            return None
        capability = self._clark.get(envelope.body.tag)
        return None if capability is None else (envelope.operation, capability)


def _fault(environ: dict[str, Any], start_response: StartResponse, error: VbiosError
           ) -> list[bytes]:
    """``error`` as the SOAP fault the guard would answer (HTTP 500)."""
    environ[FAULT_ENVIRON_KEY] = error.code
    data = faults.render_error(error)
    start_response(f"{FAULT_STATUS} Internal Server Error",
                   [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(data))),
                    ("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store")])
    return [data]
