"""HttpsSender: the library's sender, a small keep-alive pool of mutual-TLS connections
(``ssl.SSLSocket``) speaking a small, strict HTTP/1.1 of its own (``_http11``: the
request head made once per target and sent with the body in one write, the answer
read through one buffer, head and body bounded), safe to share by threads.

It trusts exactly the bundle's CA (the environment is never read: no
REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, SSL_CERT_FILE or proxy applies), checks the
server's name, presents the bundle's certificate, speaks TLS 1.2 or later, follows
no redirect, bounds the answer, and maps failures to ``TransportError`` with the
texts ``_soap.RequestsSender`` gives. Neither requests, urllib3 nor http.client is
imported. An answer that breaks HTTP/1.1 or its bounds is a ``TransportError``
("cannot connect: " and what was wrong) and its connection is closed; so is one
that says ``Connection: close``, after it is read.

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

import errno
import select
import socket
import ssl
import threading
from pathlib import Path
from urllib.parse import urlsplit

from vbios_client import _xml
from vbios_client._channel import USER_AGENT, check_client_files, reason, too_long
from vbios_client._http11 import (
    AnswerReader,
    AnswerTooLong,
    HttpError,
    RemoteDisconnected,
    Unanswered,
    request_head,
    valid_path,
)
from vbios_client.exceptions import TransportError
from vbios_client.models import CachedAnswer, cached_answer

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
    "GetReferenceMeasurements", "CollectDiagnostics", "GetFirmwareInventory",
    "GetDomainFirmwareInventory", "GetFirmwareJob", "GetFirmwareHistory",
    "GetDomainFirmwareHistory", "GetFirmwareUpload", "GetSmbios", "GetDomainSmbios",
    "GetSystemEventLog", "GetDomainSystemEventLog", "GetWakeAlarm", "GetDomainWakeAlarm",
    "GetWatchdog", "GetDomainWatchdog",
    "GetThermal", "GetDomainThermal",
    "GetEvents",
})

#: How a connection the peer closed fails (RemoteDisconnected is a reset).
_CLOSED = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, ssl.SSLEOFError,
           ssl.SSLZeroReturnError)

#: OpenSSL's verify results that mean the server's chain does not lead to the bundle's CA:
#: unable to get issuer certificate (2), self-signed leaf (18) or in the chain (19),
#: unable to get the local issuer (20), unable to verify the leaf's signature (21).
_NOT_FROM_OUR_CA = frozenset({2, 18, 19, 20, 21})

#: Request heads kept per sender (one per URL and set of headers: one per operation).
_MAX_HEADS = 128


class _Stale(Exception):
    """A reused connection was found dead before the request could have been run."""


class _Connection:
    """One mutual-TLS connection to ``host``:``port`` and the reader of its answers."""

    def __init__(self, host: str, port: int, *, timeout: float,
                 context: ssl.SSLContext) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._context = context
        self.sock: ssl.SSLSocket | None = None
        self._answers: AnswerReader | None = None

    def connect(self) -> None:
        """Connects and completes the TLS handshake (the server's name checked)."""
        raw = socket.create_connection((self.host, self.port), self.timeout)
        try:
            try:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError as exc:
                if exc.errno != errno.ENOPROTOOPT:
                    raise
            sock = self._context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise
        self.sock, self._answers = sock, AnswerReader(sock)

    def send(self, request: bytes) -> None:
        assert self.sock is not None
        self.sock.sendall(request)

    def answer(self, limit: int) -> tuple[int, bytes, bool]:
        """The status, the body and whether the connection must close after it."""
        assert self._answers is not None
        return self._answers.read(limit)

    def cached(self) -> str | None:
        """The last answer's X-Vbios-Cached field, or None."""
        return None if self._answers is None else self._answers.cached

    def close(self) -> None:
        sock, self.sock, self._answers = self.sock, None, None
        if sock is not None:
            sock.close()


class HttpsSender:
    def __init__(self, cert: Path, key: Path, ca: Path) -> None:
        check_client_files(cert, key, ca)
        self._files = (str(cert), str(key), str(ca))
        self._context: ssl.SSLContext | None = None
        self._lock = threading.Lock()
        self._idle: list[_Connection] = []
        self._generation = 0  # close() bumps it: connections out at that time are not kept
        #: Per (url, headers...): host, port and the request head up to Content-Length's value.
        self._heads: dict[tuple[object, ...], tuple[str, int, bytes]] = {}
        self._noted = threading.local()  # each thread's last answer's cache note

    def last_cached(self) -> CachedAnswer | None:
        """Whether the calling thread's last answer was served from the vBIOS's cache."""
        noted: CachedAnswer | None = getattr(self._noted, "cached", None)
        return noted

    def post(self, url: str, body: bytes, headers: dict[str, str], *, timeout: float,
             operation: str) -> tuple[int, bytes]:
        self._noted.cached = None
        try:
            host, port, head = self._target(url, headers)
            request = b"%s%d\r\n\r\n%s" % (head, len(body), body)
            try:
                return self._exchange(host, port, request, timeout, operation, reuse=True)
            except _Stale:
                return self._exchange(host, port, request, timeout, operation, reuse=False)
        except AnswerTooLong as exc:
            raise too_long(url, operation, exc.limit) from None
        except TimeoutError:
            raise TransportError(f"{url}: no answer within {timeout:g} s") from None
        except ssl.SSLCertVerificationError as exc:
            if exc.verify_code in _NOT_FROM_OUR_CA:
                raise TransportError(f"the server at {url} is not from this bundle's CA"
                                     f" (ca.pem): TLS failure: {exc.verify_message}") from None
            raise TransportError(f"{url}: TLS failure: {reason(exc)}") from None
        except ssl.SSLError as exc:
            raise TransportError(f"{url}: TLS failure: {reason(exc)}") from None
        except (OSError, HttpError) as exc:
            raise TransportError(f"{url}: cannot connect: {reason(exc)}") from None

    def _exchange(self, host: str, port: int, request: bytes, timeout: float,
                  operation: str, *, reuse: bool) -> tuple[int, bytes]:
        """One request on one connection; ``_Stale`` when the rule above allows another."""
        generation = self._generation
        connection = self._take(host, port, timeout) if reuse else None
        reused = connection is not None
        if connection is None:
            connection = _Connection(host, port, timeout=timeout, context=self._tls())
        try:
            if connection.sock is None:
                connection.connect()  # so that a failure of send() is one of writing
            unsent = False  # whether writing the request failed
            try:
                connection.send(request)
            except (BrokenPipeError, ConnectionResetError):
                unsent = True  # read on, as urllib3 does: the server may have answered
            except _CLOSED as exc:
                if reused:
                    raise _Stale() from exc
                raise
            try:
                status, content, closing = connection.answer(_xml.MAX_ANSWER_BYTES)
                self._noted.cached = cached_answer(connection.cached())
            except (Unanswered, RemoteDisconnected) as exc:
                failure = exc.__cause__ if isinstance(exc, Unanswered) else exc
                assert failure is not None
                if reused and isinstance(failure, _CLOSED) and (
                        unsent or operation in REPEATABLE):
                    raise _Stale() from failure
                raise failure from None
        except BaseException:
            connection.close()
            raise
        if unsent:  # the server answered early and closed
            connection.close()
        else:
            self._give_back(connection, closing, generation)
        return status, content

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

    def _give_back(self, connection: _Connection, closing: bool, generation: int) -> None:
        """Keep ``connection`` for the next call unless its answer said it closes."""
        if not closing and connection.sock is not None:
            with self._lock:
                if generation == self._generation and len(self._idle) < MAX_IDLE:
                    self._idle.append(connection)
                    return
        connection.close()

    def _target(self, url: str, headers: dict[str, str]) -> tuple[str, int, bytes]:
        """Host, port and request head of a POST of ``headers`` to ``url`` (kept)."""
        key = (url, *headers.items())
        found = self._heads.get(key)
        if found is None:
            parts = urlsplit(url)
            try:
                port = parts.port or 443
            except ValueError as exc:
                raise TransportError(f"{url}: {exc}") from None
            path = parts.path or "/"
            if not valid_path(path):
                raise TransportError(f"{url}: the path must be printable ASCII without spaces")
            host = parts.hostname or ""
            head = request_head(host, port, path, {**headers, "User-Agent": USER_AGENT})
            found = (host, port, head)
            if len(self._heads) >= _MAX_HEADS:
                self._heads.clear()
            self._heads[key] = found
        return found

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
