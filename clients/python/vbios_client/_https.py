"""HttpsSender: the library's sender, a small keep-alive pool of mutual-TLS connections
through the standard library's http.client, safe to share by threads.

It trusts exactly the bundle's CA (the environment is never read: no
REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE or proxy applies), checks the
server's name, presents the bundle's certificate, speaks TLS 1.2 or later, follows
no redirect, bounds the answer, and maps failures to ``TransportError`` with the
texts ``_soap.RequestsSender`` gives. Neither requests nor urllib3 is imported.

Each call takes the most recently returned idle connection (LIFO: the warmest, the
least likely to have been closed by the server's idle timeout) or opens a new one;
a thread holds its connection alone until the answer is read whole, then puts it
back. At most ``MAX_IDLE`` connections wait between calls; more concurrent calls
open more connections, closed when they come back to a full pool.

The retry rule (``_Stale``): a kept-alive connection can die while idle (the server
closes idle connections after its keep-alive timeout, a server restart closes them
all). Before reuse, a connection with anything to read is dropped: an idle
connection has nothing to say, so readable means closed (EOF, a close_notify) or
broken. That check cannot see a close racing with the request, so a call is sent
once more, on a new connection and only once, when ALL of these hold:

- the connection had served an earlier call (a new connection that fails is a
  server that refuses, resets or is down: saying so at once is the answer);
- not one byte of the answer arrived (once the status line has started, the server
  has handled the request, and a failure is reported as it is);
- not a timeout (the server may be busy with the request: sending it again would
  double the work and the wait);
- the failure is the connection's end (EOF, reset, broken pipe, a TLS EOF), and either
  writing the request failed, or the operation is in ``REPEATABLE`` (it changes
  nothing, so running it twice is running it once). A request whose writing failed
  was not run: the server dispatches a request only once its body has arrived
  whole, and a write fails on a connection already gone. (As urllib3 does, the
  answer is still read after a failed write, so that an answer the server gave
  before closing, such as a 413, or the TLS alert that says why it refused, is what
  the caller sees; only when none came is the request sent again.)

A write (SetAttributes, Reset, ChangePassword, RenewCertificate, ...) whose request
was written whole is never sent twice: the server may have run it before the
connection broke (a worker killed after the commit, before its answer), and a second
Reset reboots twice, a second ChangePassword fails on the old password, a second
conditional write fails with VersionConflict although the first succeeded. The
caller gets the ``TransportError`` and decides, as with any connection lost mid-call.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import threading
from pathlib import Path
from urllib.parse import urlsplit

from vbios_client import _xml
from vbios_client._channel import USER_AGENT, check_client_files, reason, too_long
from vbios_client.exceptions import TransportError

#: Idle connections kept between calls (requests' pool kept 4 too).
MAX_IDLE = 4

#: Operations that change nothing on the server, so sending one twice is sending it
#: once. GetProvisioningState completes a renewal (the server revokes the previous
#: certificate): doing that twice is doing it once. GetQuote signs a fresh quote each
#: time, which the caller's nonce check tells apart. Not listed, not repeated.
REPEATABLE = frozenset({
    "GetProvisioningState", "GetAttributeRegistry", "GetAttributes", "GetPendingAttributes",
    "GetBootOrder", "GetPowerState", "GetDomainPowerState", "GetSecureBoot",
    "GetSecureBootDatabases", "GetBootMeasurements", "GetQuote", "GetIntegrityStatus",
    "GetReferenceMeasurements", "CollectDiagnostics",
})

#: How a connection the peer closed fails (http.client.RemoteDisconnected is a reset).
_CLOSED = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, ssl.SSLEOFError,
           ssl.SSLZeroReturnError)


class _Stale(Exception):
    """A reused connection was found dead before the request could have been run."""


class _Unanswered(Exception):
    """Reading failed before the first byte of the answer; ``__cause__`` says how."""


class _Answer(http.client.HTTPResponse):
    """A response that tells a failure before its first byte from one after it."""

    def begin(self) -> None:
        if self.headers is None:  # not begun yet (begin() returns at once once begun)
            try:  # waits for the first byte, as reading the status line would
                self.fp.peek(1)
            except OSError as exc:
                raise _Unanswered() from exc
        # b"" (the peer closed) reaches the status line: RemoteDisconnected, nothing read
        super().begin()


class _Connection(http.client.HTTPSConnection):
    response_class = _Answer


class HttpsSender:
    def __init__(self, cert: Path, key: Path, ca: Path) -> None:
        check_client_files(cert, key, ca)
        self._files = (str(cert), str(key), str(ca))
        self._context: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._idle: list[_Connection] = []
        self._generation = 0  # close() bumps it: connections out at that time are not kept
        self._where: tuple[str, str, int, str] | None = None  # url, host, port, path

    def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float,
             operation: str) -> tuple[int, bytes]:
        try:
            host, port, path = self._target(url)
            head = {**headers, "User-Agent": USER_AGENT}
            try:
                return self._exchange(url, host, port, path, body, head, timeout, operation,
                                      reuse=True)
            except _Stale:
                return self._exchange(url, host, port, path, body, head, timeout, operation,
                                      reuse=False)
        except TimeoutError:
            raise TransportError(f"{url}: no answer within {timeout:g} s") from None
        except ssl.SSLError as exc:
            raise TransportError(f"{url}: TLS failure: {reason(exc)}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransportError(f"{url}: cannot connect: {reason(exc)}") from None

    def _exchange(self, url: str, host: str, port: int, path: str, body: bytes,
                  headers: dict[str, str], timeout: float, operation: str, *,
                  reuse: bool) -> tuple[int, bytes]:
        """One request on one connection; ``_Stale`` when the rule above allows another."""
        generation = self._generation
        connection = self._take(host, port, timeout) if reuse else None
        reused = connection is not None
        if connection is None:
            connection = _Connection(host, port, timeout=timeout, context=self._tls())
        response: http.client.HTTPResponse | None = None
        try:
            if connection.sock is None:
                connection.connect()  # so that a failure of request() is one of writing
            unsent = False  # whether writing the request failed
            try:
                connection.request("POST", path, body=body, headers=headers)
            except (BrokenPipeError, ConnectionResetError):
                unsent = True  # read on, as urllib3 does: the server may have answered
            except _CLOSED as exc:
                if reused:
                    raise _Stale() from exc
                raise
            try:
                response = connection.getresponse()
            except (_Unanswered, http.client.RemoteDisconnected) as exc:
                failure = exc.__cause__ if isinstance(exc, _Unanswered) else exc
                assert failure is not None
                if reused and isinstance(failure, _CLOSED) and (
                        unsent or operation in REPEATABLE):
                    raise _Stale() from failure
                raise failure from None
            content = _bounded(url, operation, response)
        except BaseException:
            if response is not None:  # owns the socket when the server said Connection: close
                response.close()
            connection.close()
            raise
        if unsent:  # the server answered early and closed
            connection.close()
        else:
            self._give_back(connection, response, generation)
        return response.status, content

    def _take(self, host: str, port: int, timeout: float) -> _Connection | None:
        """The most recently returned idle connection still open, or None."""
        while True:
            with self._lock:
                if not self._idle:
                    return None
                connection = self._idle.pop()
            sock = connection.sock
            if (sock is not None and connection.host == host and connection.port == port
                    and _quiet(sock)):
                if connection.timeout != timeout:
                    connection.timeout = timeout
                    sock.settimeout(timeout)
                return connection
            connection.close()

    def _give_back(self, connection: _Connection, response: http.client.HTTPResponse,
                   generation: int) -> None:
        """Keep ``connection`` for the next call if its answer was read whole and it stays open."""
        if not response.will_close and response.isclosed() and connection.sock is not None:
            with self._lock:
                if generation == self._generation and len(self._idle) < MAX_IDLE:
                    self._idle.append(connection)
                    return
        connection.close()

    def _target(self, url: str) -> tuple[str, int, str]:
        where = self._where
        if where is None or where[0] != url:
            parts = urlsplit(url)
            try:
                port = parts.port or 443
            except ValueError as exc:
                raise TransportError(f"{url}: {exc}") from None
            where = self._where = (url, parts.hostname or "", port, parts.path or "/")
        return where[1], where[2], where[3]

    def _tls(self) -> ssl.SSLContext:
        """One context for every connection (its session cache, its loaded files)."""
        with self._lock:
            if self._context is None:
                self._context = _client_context(*self._files)
            return self._context

    def close(self) -> None:
        """Close the idle connections; those in use are closed when their call ends."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._generation += 1
        for connection in idle:
            connection.close()


def _bounded(url: str, operation: str, response: http.client.HTTPResponse) -> bytes:
    """The body of ``response``, read up to ``_xml.MAX_ANSWER_BYTES`` and no further."""
    limit = _xml.MAX_ANSWER_BYTES
    declared = response.getheader("Content-Length") or ""
    if declared.isdigit() and int(declared) > limit:
        raise too_long(url, operation, limit)
    content = response.read(limit + 1)
    if len(content) > limit:
        raise too_long(url, operation, limit)
    if response.length:  # the connection ended before the declared length
        raise http.client.IncompleteRead(content, response.length)
    return content


_poll = getattr(select, "poll", None)


def _quiet(sock: socket.socket) -> bool:
    """Whether an idle connection has nothing to read (readable means closed or broken)."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():  # TLS bytes already decrypted
        return False
    if _poll is not None:  # select() cannot watch descriptors past FD_SETSIZE
        poller = _poll()
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)
    return not select.select([sock], [], [], 0)[0]


def _client_context(cert: str, key: str, ca: str) -> ssl.SSLContext:
    """Trusts ``ca`` only (not the system's, whatever the environment says), checks the
    server's name, presents ``cert``/``key``; TLS 1.2 at least."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context
