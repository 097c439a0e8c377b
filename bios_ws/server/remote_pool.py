"""Kept-alive mutual-TLS connections to remote vBIOS installations (``RemotePools``, one
``RemotePool`` per remote), for ``server.forwarding`` and the host protocol.

A POST gets the remote's answer (status, content type, body) or a ``RemoteUnavailable``
within the pool's ``timeout`` (each wait, and the whole call checked between reads):
a remote that cannot be reached, refuses the handshake or the credential, closes
without an answer or answers too slowly, too much, or not in the expected type.
``RemoteOutcomeUnknown`` (a ``RemoteUnavailable``) says the request was written whole
before that: the remote may have run it. The retry rule is ``RemotePool``'s.
"""

from __future__ import annotations

import http.client
import logging
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bios_ws.domain.routing import Remote
from bios_ws.errors import RemoteOutcomeUnknown, RemoteUnavailable

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0
#: The largest answer relayed (a System Event Log or an event page is well below).
MAX_ANSWER = 16 * 1_048_576
IDLE_CONNECTIONS = 8
CHUNK = 65536
#: How a connection the remote closed fails: the end of the connection (EOF, reset,
#: broken pipe, a TLS EOF), which the retry rule looks at; never a timeout.
_CLOSED = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
           ConnectionAbortedError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


class _Unsent(Exception):
    """Writing the request failed (or its connection did not open): the remote cannot
    have run it (it dispatches a request once its body has arrived whole)."""


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    content_type: str
    body: bytes


class RemotePool:
    """Kept-alive HTTPS connections to one remote with one TLS client context.

    The retry rule: an idle connection the remote closed (its idle bound, its restart)
    is seen before reuse (anything to read on an idle connection means its end) and
    dropped. A request goes once more, on a new connection, only when running it twice
    is running it once: its writing failed on a kept-alive connection (it was not run),
    or it is ``idempotent`` (a read) and the connection ended before its answer. A
    write written whole is never sent again (``RemoteOutcomeUnknown``); nothing is sent
    again after a timeout.
    """

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

    @property
    def context(self) -> ssl.SSLContext:
        """The TLS client context: this host's credential there, the remote's CA."""
        return self._context

    @property
    def address(self) -> tuple[str, int]:
        return self._host, self._port

    @property
    def path(self) -> str:
        """The remote's SOAP endpoint path."""
        return self._path

    @property
    def timeout(self) -> float:
        return self._timeout

    def post(self, body: bytes, headers: Mapping[str, str], *, path: str | None = None,
             accept: str = "text/xml", idempotent: bool = False) -> Answer:
        """The remote's answer to a POST of ``body`` to ``path`` (the remote's SOAP
        endpoint by default), which must be of type ``accept``; RemoteUnavailable within
        about ``timeout`` otherwise (``RemoteOutcomeUnknown`` once the request was
        written whole). ``idempotent``: the request changes nothing (may go twice)."""
        deadline = time.monotonic() + self._timeout
        target = self._path if path is None else path
        conn, reused = self._take()
        for attempt in (1, 2):
            try:
                answer = self._exchange(conn, target, body, headers, deadline, accept)
            except _Unsent as unsent:
                conn.close()
                failure = unsent.__cause__
                if isinstance(failure, RemoteUnavailable):
                    raise failure from None  # out of time before writing
                if attempt == 1 and reused and isinstance(failure, _CLOSED):
                    conn, reused = self._new(), False
                    continue
                raise _unavailable(self.remote, failure) from None
            except RemoteUnavailable as error:  # written whole: too slow or unfit answer
                conn.close()
                raise RemoteOutcomeUnknown(error.message) from None
            except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
                conn.close()
                if attempt == 1 and idempotent and isinstance(exc, _CLOSED):
                    conn, reused = self._new(), False
                    continue
                raise _unavailable(self.remote, exc, RemoteOutcomeUnknown) from None
            self._give_back(conn, answer)
            return answer
        raise AssertionError("unreachable: the second attempt returns or raises")

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _take(self) -> tuple[http.client.HTTPSConnection, bool]:
        """The most recently returned idle connection still open (and True), or a new
        one (and False)."""
        while True:
            with self._lock:
                if not self._idle:
                    break
                conn = self._idle.pop()
            if conn.sock is not None and _quiet(conn.sock):
                return conn, True
            conn.close()
        return self._new(), False

    def _new(self) -> http.client.HTTPSConnection:
        return _OneWrite(self._host, self._port, timeout=self._timeout,
                         context=self._context)

    def _exchange(self, conn: http.client.HTTPSConnection, path: str, body: bytes,
                  headers: Mapping[str, str], deadline: float, accept: str) -> Answer:
        """One request and its answer; ``_Unsent`` (caused by the failure) when the
        request was not written whole."""
        try:
            conn.timeout = _remaining(self.remote, deadline)
            if conn.sock is not None:
                conn.sock.settimeout(conn.timeout)
            conn.request("POST", path, body=body, headers=dict(headers))
        except (RemoteUnavailable, OSError, http.client.HTTPException, ssl.SSLError) as exc:
            raise _Unsent() from exc
        self._bound(conn, deadline)
        response = conn.getresponse()
        chunks: list[bytes] = []
        size = 0
        while True:
            self._bound(conn, deadline)
            chunk = response.read1(CHUNK)
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


def _unavailable(remote: Remote, exc: BaseException | None,
                 kind: type[RemoteUnavailable] = RemoteUnavailable) -> RemoteUnavailable:
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return kind(f"remote {remote.name} did not answer in time")
    log.info("remote %s (%s) unavailable: %s", remote.name, remote.url, exc)
    return kind(f"remote {remote.name} is unavailable")


_poll = getattr(select, "poll", None)


def _quiet(sock: socket.socket) -> bool:
    """Whether an idle connection has nothing to read: an idle connection has nothing to
    say, so anything to read is its end (EOF, a close_notify) or a broken remote. A TLS
    record without data (a session ticket) read on the way leaves it quiet."""
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return False
    if _poll is not None:  # select() cannot watch descriptors past FD_SETSIZE
        poller = _poll()
        poller.register(sock, select.POLLIN)
        if not poller.poll(0):
            return True
    elif not select.select([sock], [], [], 0)[0]:
        return True
    timeout = sock.gettimeout()
    try:
        sock.setblocking(False)
        sock.recv(1)  # b"": its end; data: what nobody asked for
    except ssl.SSLWantReadError:
        sock.settimeout(timeout)
        return True
    except (OSError, ValueError):
        return False
    return False


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

    def ready(self, remote: Remote) -> RemotePool | None:
        """The pool of ``remote`` if its credential is loaded already (None: ``pool``
        would load it, which may unseal a passphrase in the TPM: not on an event loop)."""
        with self._lock:
            pool = self._pools.get(remote.name)
        return pool if pool is not None and pool.remote == remote else None

    def close(self) -> None:
        with self._lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


class _OneWrite(http.client.HTTPSConnection):
    """Sends a request's head and its body in one write: one TLS record the remote reads
    at once, where ``http.client`` writes them apart (two records: the remote's loop wakes
    twice, and Nagle may hold the second). bench/remote.py: 70 to 80 us a hop."""

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        if not isinstance(message_body, bytes) or encode_chunked:
            super()._send_output(message_body, encode_chunked)  # type: ignore[misc]
            return
        self._buffer.extend((b"", b""))  # type: ignore[attr-defined]
        head = b"\r\n".join(self._buffer)  # type: ignore[attr-defined]
        del self._buffer[:]  # type: ignore[attr-defined]
        self.send(head + message_body)
