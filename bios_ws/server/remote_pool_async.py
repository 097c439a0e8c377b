"""The remote pools on a front worker's event loop: a routed call forwarded without a
thread.

A routed guest call found on the worker's loop (``blocking.AwaitOnLoop``) is posted from
the loop itself: no hand-over to a pool thread and back (one wake-up each way, and the
request's first pass on the loop run again there), so a routed call costs the local
one's front plus one round trip to the remote (bench/remote.py). ``AsyncRemotePool``
keeps the same contract as ``RemotePool`` (``server.remote_pool``), with the same TLS
client context (this host's credential there, the remote's CA pinned): the answer or
``RemoteUnavailable`` within the timeout, ``RemoteOutcomeUnknown`` once the request was
written whole, and the same retry rule: an idle connection the remote closed is dropped
before reuse; a request goes once more, on a new connection, only when its writing
failed on a kept-alive connection or it is a read whose connection ended before its
answer; nothing is sent again after a timeout.

One set of pools per event loop (``pools_of_loop``): a worker's connections are its own.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import weakref
from collections.abc import Mapping
from dataclasses import dataclass

from bios_ws.errors import RemoteOutcomeUnknown, RemoteUnavailable
from bios_ws.server.remote_pool import IDLE_CONNECTIONS, MAX_ANSWER, Answer, RemotePool

log = logging.getLogger(__name__)

#: The largest answer head (status line and fields) read from a remote.
MAX_HEAD = 65536
#: How the end of a connection shows on the loop (EOF, reset, a TLS EOF).
_CLOSED = (asyncio.IncompleteReadError, ConnectionError, ssl.SSLEOFError,
           ssl.SSLZeroReturnError, BrokenPipeError)


class _Unsent(Exception):
    """Writing the request failed (or its connection did not open): not run there."""


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def idle_and_open(self) -> bool:
        """Whether an idle connection may take a request: the remote did not end it (an
        idle connection has nothing to say: EOF, an error or a closing transport is its
        end)."""
        return (not self.reader.at_eof() and self.reader.exception() is None
                and not self.writer.is_closing())

    def close(self) -> None:
        self.writer.close()


class AsyncRemotePool:
    """Kept-alive connections to one remote, on one event loop, with the TLS context of
    its thread-side pool (``source``)."""

    def __init__(self, source: RemotePool, *, idle: int = IDLE_CONNECTIONS) -> None:
        self.source = source
        self._idle: list[_Connection] = []
        self._idle_max = idle

    async def post(self, body: bytes, headers: Mapping[str, str], *,
                   idempotent: bool = False) -> Answer:
        """As ``RemotePool.post`` to the remote's SOAP endpoint (type text/xml)."""
        remote = self.source.remote
        sent = [False]  # whether the request was written whole (it may have run)
        conn: _Connection | None = None
        try:
            async with asyncio.timeout(self.source.timeout):
                conn, reused = await self._take()
                for attempt in (1, 2):
                    try:
                        answer = await self._exchange(conn, body, headers, sent)
                    except _Unsent as unsent:
                        conn.close()
                        failure = unsent.__cause__
                        if attempt == 1 and reused and isinstance(failure, _CLOSED):
                            conn, reused = await self._new(), False
                            continue
                        raise _unavailable(remote.name, failure) from None
                    except RemoteUnavailable as error:  # written whole: an unfit answer
                        conn.close()
                        raise RemoteOutcomeUnknown(error.message) from None
                    except (OSError, ssl.SSLError, asyncio.IncompleteReadError,
                            asyncio.LimitOverrunError, ValueError) as exc:
                        conn.close()
                        if attempt == 1 and idempotent and isinstance(exc, _CLOSED):
                            conn, reused = await self._new(), False
                            continue
                        raise _unavailable(remote.name, exc, RemoteOutcomeUnknown) from None
                    self._give_back(conn, answer)
                    return answer
        except TimeoutError:
            if conn is not None:
                conn.close()
            kind = RemoteOutcomeUnknown if sent[0] else RemoteUnavailable
            raise kind(f"remote {remote.name} did not answer in time") from None
        raise AssertionError("unreachable: the second attempt returns or raises")

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    async def _take(self) -> tuple[_Connection, bool]:
        while self._idle:
            conn = self._idle.pop()
            if conn.idle_and_open():
                return conn, True
            conn.close()
        return await self._new(), False

    async def _new(self) -> _Connection:
        host, port = self.source.address
        try:
            reader, writer = await asyncio.open_connection(
                host, port, ssl=self.source.context, server_hostname=host, limit=MAX_HEAD)
        except (OSError, ssl.SSLError) as exc:
            raise _unavailable(self.source.remote.name, exc) from None
        return _Connection(reader, writer)

    async def _exchange(self, conn: _Connection, body: bytes, headers: Mapping[str, str],
                        sent: list[bool]) -> Answer:
        host, port = self.source.address
        lines = [f"POST {self.source.path} HTTP/1.1", f"Host: {host}:{port}",
                 "Accept-Encoding: identity", f"Content-Length: {len(body)}",
                 *(f"{name}: {value}" for name, value in headers.items()), "", ""]
        try:
            conn.writer.write("\r\n".join(lines).encode("latin-1") + body)
            await conn.writer.drain()
        except (OSError, ssl.SSLError) as exc:
            raise _Unsent() from exc
        sent[0] = True
        head = await conn.reader.readuntil(b"\r\n\r\n")
        status, reason, fields, will_close = _parse_head(head)
        length = fields.get("content-length")
        if "chunked" in fields.get("transfer-encoding", "").lower():
            data = await _chunked(conn.reader, self.source.remote.name)
        elif length is not None:
            size = int(length)
            if size < 0 or size > MAX_ANSWER:
                raise RemoteUnavailable(f"remote {self.source.remote.name} answered more"
                                        f" than {MAX_ANSWER} bytes")
            data = await conn.reader.readexactly(size)
        else:  # the answer ends with the connection
            data = await conn.reader.read(MAX_ANSWER + 1)
            will_close = True
            if len(data) > MAX_ANSWER:
                raise RemoteUnavailable(f"remote {self.source.remote.name} answered more"
                                        f" than {MAX_ANSWER} bytes")
        content_type = fields.get("content-type", "")
        if not content_type.lower().startswith("text/xml"):
            raise RemoteUnavailable(f"remote {self.source.remote.name} answered HTTP"
                                    f" {status} without a text/xml body")
        if will_close:
            conn.close()
        return Answer(status, reason, content_type, data)

    def _give_back(self, conn: _Connection, answer: Answer) -> None:
        if conn.writer.is_closing() or len(self._idle) >= self._idle_max:
            conn.close()
            return
        self._idle.append(conn)


def _parse_head(head: bytes) -> tuple[int, str, dict[str, str], bool]:
    """Status, reason, fields (lower-case names; repeated ones joined) and whether the
    remote closes the connection after this answer; ValueError when malformed."""
    status_line, *field_lines = head.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ValueError(f"not an HTTP/1 status line: {status_line[:80]!r}")
    fields: dict[str, str] = {}
    for line in field_lines:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip():
            raise ValueError("a malformed header field")
        key = name.lower()
        fields[key] = f"{fields[key]}, {value.strip()}" if key in fields else value.strip()
    connection = fields.get("connection", "").lower()
    will_close = "close" in connection or (version == "HTTP/1.0"
                                           and "keep-alive" not in connection)
    return int(code), reason, fields, will_close


async def _chunked(reader: asyncio.StreamReader, remote: str) -> bytes:
    data = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            await _trailer(reader)
            return bytes(data)
        if len(data) + size > MAX_ANSWER:
            raise RemoteUnavailable(f"remote {remote} answered more than {MAX_ANSWER} bytes")
        data += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise ValueError("a malformed chunk")


async def _trailer(reader: asyncio.StreamReader) -> None:
    while (await reader.readuntil(b"\r\n")) != b"\r\n":
        pass


def _unavailable(remote: str, exc: BaseException | None,
                 kind: type[RemoteUnavailable] = RemoteUnavailable) -> RemoteUnavailable:
    log.info("remote %s unavailable: %s", remote, exc)
    return kind(f"remote {remote} is unavailable")


class AsyncRemotePools:
    """One ``AsyncRemotePool`` per thread-side pool (a remote's record and credential)."""

    def __init__(self) -> None:
        self._pools: dict[str, AsyncRemotePool] = {}

    def pool(self, source: RemotePool) -> AsyncRemotePool:
        name = source.remote.name
        found = self._pools.get(name)
        if found is not None and found.source is source:
            return found
        if found is not None:
            found.close()
        fresh = self._pools[name] = AsyncRemotePool(source)
        return fresh

    def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            pool.close()


_BY_LOOP: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncRemotePools] = (
    weakref.WeakKeyDictionary())


def pools_of_loop() -> AsyncRemotePools:
    """The pools of the running event loop (made on first use)."""
    loop = asyncio.get_running_loop()
    found = _BY_LOOP.get(loop)
    if found is None:
        found = _BY_LOOP[loop] = AsyncRemotePools()
    return found
