"""HTTP/1.1 on one TLS connection, every read under a bound (h11 frames, we time).

A connection runs this loop: receive a whole request head within
``head_timeout`` (counted from the handshake, or from the first byte of a
kept-alive connection's next request) and at most ``max_head_bytes``; receive
its body at ``body_min_rate`` or better once ``body_grace`` has passed and at
most ``max_body_bytes``; hand the complete request to the application (a
thread); write the answer within ``write_timeout``; wait at most
``idle_timeout`` for the next request. A body over its bound is read and
dropped up to ``discard_limit`` and then refused with 413 (or refused at once
when its Content-Length or ``Expect: 100-continue`` says so), and the
connection closed. Malformed requests (including Content-Length together with
Transfer-Encoding, the request-smuggling shape) are refused by h11 with 400.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http import HTTPStatus

import h11

from bios_ws.server.calls import Call, CallNote, RecordCall, outcome_of
from bios_ws.server.options import Bounds
from bios_ws.server.wsgi_call import Answer, Headers, PeerCertificate, Request

log = logging.getLogger(__name__)

_READ_SIZE = 65_536

#: Renders a refusal the front makes itself (413, 431, 400) as the application would:
#: (status, message) -> (headers, body).
Refuse = Callable[[int, str], tuple[Headers, bytes]]
RunApplication = Callable[[Request], Awaitable[Answer]]


class Phase(enum.Enum):
    HANDSHAKE = "handshake"
    HEAD = "head"
    BODY = "body"
    APPLICATION = "application"
    WRITE = "write"
    IDLE = "idle"


class BoundExceeded(Exception):
    """A time bound passed: the connection is closed without an answer."""

    def __init__(self, phase: Phase) -> None:
        super().__init__(phase.value)
        self.phase = phase


def plain_refusal(status: int, message: str) -> tuple[Headers, bytes]:
    """A text answer, for fronts that serve no SOAP application."""
    return [("Content-Type", "text/plain; charset=utf-8")], message.encode() + b"\n"


@dataclass
class Exchange:
    """The request loop of one connection (after its TLS handshake)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    bounds: Bounds
    run_application: RunApplication
    refuse: Refuse
    peer: PeerCertificate
    remote_addr: str
    server_port: int
    phase: Phase = Phase.HEAD
    #: Set when the worker stops: the call in progress is answered, then the connection closes.
    closing: bool = False
    #: Told of every answer just before it is written (metrics, access log:
    #: ``bios_ws.server.telemetry``), so that a client holding its answer finds it counted.
    record: RecordCall | None = None
    #: Bytes of the current request's body received so far.
    body_bytes: int = 0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        bounds = self.bounds
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=bounds.max_head_bytes)
        head_deadline = loop.time() + bounds.head_timeout
        while True:  # at least one request: a stopping worker answers it with close
            request = await self._head(conn, head_deadline)
            if request is None:
                return
            started, start = time.time(), loop.time()
            note = CallNote()
            answer = await self._body_then_answer(conn, request, note)
            if self.record is not None:  # before the answer leaves: whoever has it, has this
                self._record(Call(
                    started=started, duration=loop.time() - start, peer=self.remote_addr,
                    principal=note.principal, operation=note.operation,
                    outcome=outcome_of(answer.status, note.fault), status=answer.status,
                    request_bytes=self.body_bytes,
                    response_bytes=0 if request.method == b"HEAD" else len(answer.body)))
            await self._send(conn, request, answer)
            if self.closing or conn.our_state is not h11.DONE \
                    or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()
            if not conn.trailing_data[0]:  # kept alive: wait for the next request's first byte
                self.phase = Phase.IDLE
                data = await self._read(loop.time() + bounds.idle_timeout)
                if not data:
                    return
                conn.receive_data(data)
            head_deadline = loop.time() + bounds.head_timeout

    async def _head(self, conn: h11.Connection, deadline: float) -> h11.Request | None:
        """The next request's head, or None when the client closed cleanly."""
        self.phase = Phase.HEAD
        # h11's max_incomplete_event_size bounds only a head still incomplete: one that
        # arrives whole in a single read passes, so the bytes are counted here as well.
        received = len(conn.trailing_data[0])
        try:
            while True:
                event = conn.next_event()
                if event is not h11.NEED_DATA:
                    break
                data = await self._read(deadline)
                received += len(data)
                conn.receive_data(data)
        except h11.RemoteProtocolError as exc:
            await self._refuse(conn, exc.error_status_hint, "malformed HTTP request")
            return None
        if isinstance(event, h11.ConnectionClosed):
            return None
        assert isinstance(event, h11.Request)
        names = {name for name, _ in event.headers}
        if b"content-length" in names and b"transfer-encoding" in names:
            # RFC 9112 6.1: the request-smuggling shape; h11 would let Transfer-Encoding win
            await self._refuse(conn, 400, "Content-Length together with Transfer-Encoding")
            return None
        if received - len(conn.trailing_data[0]) > self.bounds.max_head_bytes:
            await self._refuse(conn, 431, "request header fields too large")
            return None
        return event

    def _record(self, call: Call) -> None:
        assert self.record is not None
        try:
            self.record(call)
        except Exception:  # never fail a call for its record
            log.exception("recording a call failed")

    async def _body_then_answer(self, conn: h11.Connection, head: h11.Request,
                                note: CallNote) -> Answer:
        bounds = self.bounds
        self.body_bytes = 0
        declared = _content_length(head)
        if declared is not None and declared > bounds.max_body_bytes and (
                declared > bounds.discard_limit or conn.they_are_waiting_for_100_continue):
            return self._too_large()
        if conn.they_are_waiting_for_100_continue:
            await self._write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
        self.phase = Phase.BODY
        loop = asyncio.get_running_loop()
        start = loop.time()
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                return self._refusal(exc.error_status_hint, "malformed HTTP request body")
            if event is h11.NEED_DATA:
                deadline = start + bounds.body_grace + size / bounds.body_min_rate
                conn.receive_data(await self._read(deadline))
            elif isinstance(event, h11.Data):
                size += len(event.data)
                self.body_bytes = size
                if size > bounds.discard_limit:
                    return self._too_large()
                if size <= bounds.max_body_bytes:
                    chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # ConnectionClosed in the middle of a body
                raise ConnectionResetError("the client closed during the request body")
        if size > bounds.max_body_bytes:
            return self._too_large()
        self.phase = Phase.APPLICATION
        return await self.run_application(Request(
            method=head.method.decode("ascii", "replace"), target=bytes(head.target),
            headers=list(head.headers), body=b"".join(chunks), peer=self.peer,
            remote_addr=self.remote_addr, server_port=self.server_port, note=note))

    def _too_large(self) -> Answer:
        return self._refusal(413, "the request body is larger than"
                                  f" {self.bounds.max_body_bytes} bytes")

    def _refusal(self, status: int, message: str) -> Answer:
        headers, body = self.refuse(status, message)
        return Answer(status, "", headers, body)

    async def _send(self, conn: h11.Connection, head: h11.Request, answer: Answer) -> None:
        close = self.closing or answer.status in (400, 413, 431)
        await self._write(_framed(conn, answer, body=head.method != b"HEAD", close=close))

    async def _refuse(self, conn: h11.Connection, status: int, message: str) -> None:
        """Answer a request that cannot be parsed (when h11 still can answer), then close."""
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        try:
            data = _framed(conn, self._refusal(status, message), body=True, close=True)
        except h11.LocalProtocolError:
            return
        await self._write(data)

    async def _read(self, deadline: float) -> bytes:
        try:
            async with asyncio.timeout_at(deadline):
                return await self.reader.read(_READ_SIZE)
        except TimeoutError:
            raise BoundExceeded(self.phase) from None

    async def _write(self, data: bytes) -> None:
        phase, self.phase = self.phase, Phase.WRITE
        self.writer.write(data)
        try:
            async with asyncio.timeout(self.bounds.write_timeout):
                await self.writer.drain()
        except TimeoutError:
            raise BoundExceeded(Phase.WRITE) from None
        self.phase = phase


def _framed(conn: h11.Connection, answer: Answer, *, body: bool, close: bool) -> bytes:
    """``answer`` as HTTP/1.1 bytes: its length framed by us, its body unless ``body`` is
    false (a HEAD request), ``Connection: close`` when ``close``."""
    headers: Headers = [*answer.headers, ("Content-Length", str(len(answer.body)))]
    if close:
        headers.append(("Connection", "close"))
    data = conn.send(h11.Response(status_code=answer.status, headers=headers,
                                  reason=_reason(answer)))
    if body:
        data += conn.send(h11.Data(data=answer.body))
    return data + conn.send(h11.EndOfMessage())


def _reason(answer: Answer) -> bytes:
    if answer.reason:
        return answer.reason.encode("latin-1", "replace")
    try:
        return HTTPStatus(answer.status).phrase.encode("latin-1")
    except ValueError:
        return b""


def _content_length(head: h11.Request) -> int | None:
    for name, value in head.headers:
        if name == b"content-length":
            return int(value)  # h11 checked it is digits
    return None
