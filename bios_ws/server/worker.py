"""One worker process of the front: an asyncio loop that holds connections, a thread
pool that runs the application.

A connection costs the loop a coroutine and a little memory while it shakes hands,
sends its request or idles; only a complete request within its bounds reaches the
application. The loop runs it first; a request that would wait (a write, an
operation not declared loop-safe: ``bios_ws.blocking``) takes a pool thread instead. A
long poll that finds nothing to answer yet is parked on the loop, holding no thread,
until an event may concern it or its wait is over (``bios_ws.server.parking``).
All connections share one TLS context (``ServerTls``: rebuilt when the CA, server
certificate or CRL file changes, looked up once per handshake). Once a second
the housekeeping closes kept-alive connections whose certificate the CRL
now revokes; every ``REPORT_INTERVAL`` it logs what was refused, as counts (a
handshake flood is a few lines, not one per attempt), and after many connections
closed it gives their memory back.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import signal
import socket
import ssl
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bios_ws.blocking import AwaitOnLoop, WouldBlock, on_event_loop, parking
from bios_ws.domain.principal import Principal
from bios_ws.server import asyncio_tls
from bios_ws.server.exchange import BoundExceeded, Exchange, Phase, Refuse
from bios_ws.server.identity import WSGIApp, identity_of
from bios_ws.server.libc import libc_function
from bios_ws.server.options import LISTEN_BACKLOG, Bounds
from bios_ws.server.parking import ParkingLot
from bios_ws.server.telemetry import WorkerTelemetry
from bios_ws.server.tls import ServerTls
from bios_ws.server.wsgi_call import Answer, PeerCertificate, Request, call_application

log = logging.getLogger(__name__)

#: Seconds between two log lines of counts (refused handshakes, bounds exceeded).
REPORT_INTERVAL = 10.0
#: Loop iterations a connection accepted just before the listener closed takes to reach
#: ``handle`` (the accept task makes its transport, connection_made starts the handler
#: task, the handler's first step registers it), with one to spare.
ACCEPT_ITERATIONS = 4
#: Give memory back once this many connections closed since the last time and a second
#: passed without a close (their transports are freed by then), or at once after
#: ``RECLAIM_ANYWAY`` closes.
RECLAIM_AFTER = 50
RECLAIM_ANYWAY = 2000


class HandshakeFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class Held:
    """One open connection: its writer, its certificate's serial, its exchange."""

    writer: asyncio.StreamWriter
    serial: int | None = None
    exchange: Exchange | None = None

    @property
    def phase(self) -> Phase:
        return Phase.HANDSHAKE if self.exchange is None else self.exchange.phase

    def abort(self) -> None:
        self.writer.transport.abort()


@dataclass
class Counts:
    handshakes_failed: Counter[str] = field(default_factory=Counter)
    bounds_exceeded: Counter[str] = field(default_factory=Counter)
    refused_full: int = 0
    revoked_closed: int = 0

    def report(self) -> list[str]:
        lines = []
        if self.handshakes_failed:
            lines.append(f"TLS handshakes failed: {_total(self.handshakes_failed)}")
        if self.bounds_exceeded:
            lines.append(f"connections closed at a time bound: {_total(self.bounds_exceeded)}")
        if self.refused_full:
            lines.append(f"connections refused (connection bound reached): {self.refused_full}")
        if self.revoked_closed:
            lines.append(f"connections of revoked certificates closed: {self.revoked_closed}")
        return lines


def _total(counter: Counter[str]) -> str:
    details = ", ".join(f"{reason} {n}" for reason, n in counter.most_common())
    return f"{sum(counter.values())} ({details})"


class Worker:
    """Serves the WSGI application ``app`` on a listening socket until SIGTERM/SIGINT."""

    def __init__(self, app: WSGIApp, *, tls: ServerTls, bounds: Bounds, threads: int,
                 graceful_timeout: float, refuse: Refuse,
                 on_accepting: Callable[[], None] | None = None,
                 telemetry: WorkerTelemetry | None = None) -> None:
        self.telemetry = telemetry
        self.app = app if telemetry is None else telemetry.wrap(app)
        self.on_accepting = on_accepting
        self.tls = tls
        self.bounds = bounds
        self.graceful_timeout = graceful_timeout
        self.refuse = refuse
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="vbios-call")
        self.parking = ParkingLot(self.pool)
        self.held: dict[asyncio.StreamWriter, Held] = {}
        self.counts = Counts()
        self.closed_since_reclaim = 0
        self.port = 0
        self._stopping: asyncio.Event | None = None

    def run(self, listener: socket.socket) -> None:
        asyncio_tls.install()
        asyncio.run(self.serve(listener))

    async def serve(self, listener: socket.socket, *, on_signals: bool = True) -> None:
        """Serve until ``stop`` (or, ``on_signals``, SIGTERM or SIGINT: main thread only)."""
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if on_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._stopping.set)
        self.port = listener.getsockname()[1]
        # asyncio listens again on the socket it is given, with its own backlog (100)
        server = await asyncio.start_server(self.handle, sock=listener,
                                            limit=self.bounds.max_head_bytes,
                                            backlog=LISTEN_BACKLOG)
        if self.on_accepting is not None:
            self.on_accepting()  # the master may now retire what this worker replaces
        housekeeping = asyncio.create_task(self.housekeeping())
        try:
            await self._stopping.wait()
        finally:
            # Accept no more (what waits in the backlog goes to the other workers), but
            # close the server only once the connections accepted so far have their
            # transports and have reached ``handle``: asyncio (3.11) drops, with a reset,
            # a connection whose transport is made after its server closed, and the
            # drain must see every connection it is to answer. Counted in loop
            # iterations, not seconds: a starved process runs them late, but in order.
            loop.remove_reader(listener.fileno())
            for _ in range(ACCEPT_ITERATIONS):
                await asyncio.sleep(0)
            server.close()
            await self.drain()
            housekeeping.cancel()
            self.parking.close()
            self.pool.shutdown(wait=False, cancel_futures=True)
            for line in self.counts.report():
                log.warning(line)

    def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    async def drain(self) -> None:
        """Close the kept-alive connections waiting for a next request; answer the request
        of every other one (it may be a guest's call just accepted; a parked long poll
        answers at once, with what it has), then close it. What is still open after
        ``graceful_timeout`` is closed."""
        self.parking.release_all()
        for held in list(self.held.values()):
            if held.phase is Phase.IDLE:
                held.abort()
            elif held.exchange is not None:
                held.exchange.closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.graceful_timeout
        while self.held and loop.time() < deadline:
            await asyncio.sleep(0.05)
        for held in list(self.held.values()):
            held.abort()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self.held) >= self.bounds.max_connections:
            self.counts.refused_full += 1
            writer.transport.abort()
            return
        held = self.held[writer] = Held(writer)
        try:
            der = await self._handshake(writer)
            identity = identity_of(der) if der else None
            held.serial = identity.serial if isinstance(identity, Principal) else None
            peer = writer.get_extra_info("peername")
            held.exchange = Exchange(
                reader=reader, writer=writer, bounds=self.bounds,
                run_application=self._run_application, refuse=self.refuse,
                peer=PeerCertificate(der or None),
                remote_addr=str(peer[0]) if peer else "", server_port=self.port,
                closing=self._stopping is not None and self._stopping.is_set(),
                record=None if self.telemetry is None else self.telemetry.called)
            await held.exchange.run()
            writer.close()
        except HandshakeFailed as exc:
            self.counts.handshakes_failed[exc.reason] += 1
            if self.telemetry is not None:
                self.telemetry.handshake_failed(exc.reason)
        except BoundExceeded as exc:
            self.counts.bounds_exceeded[exc.phase.value] += 1
        except (ConnectionError, OSError, ssl.SSLError):
            pass  # the client went away
        except Exception:
            log.exception("connection handling failed")
        finally:
            del self.held[writer]
            self.closed_since_reclaim += 1
            if not writer.is_closing():
                writer.transport.abort()

    async def _handshake(self, writer: asyncio.StreamWriter) -> bytes | None:
        """The client certificate's DER (None without one); HandshakeFailed."""
        try:
            await writer.start_tls(self.tls.context(),
                                   ssl_handshake_timeout=self.bounds.handshake_timeout)
        except ssl.SSLError as exc:
            raise HandshakeFailed(str(exc.reason or "TLS error").lower()) from None
        except ConnectionAbortedError:  # asyncio's handshake timeout
            raise HandshakeFailed("timeout") from None
        except (OSError, EOFError):
            raise HandshakeFailed("closed by the client") from None
        ssl_object = writer.get_extra_info("ssl_object")
        return ssl_object.getpeercert(binary_form=True) if ssl_object else None

    async def _run_application(self, request: Request) -> Answer:
        """The answer to ``request``, parked between runs while it waits for events."""
        return await self.parking.run(functools.partial(self._run_once, request),
                                      size=len(request.body) + len(request.target))

    async def _run_once(self, request: Request, may_park: bool) -> Answer:
        """On the loop thread, unless the application finds it would wait (``WouldBlock``,
        raised before any side effect): then on a pool thread; or it awaits I/O the loop
        does itself (``AwaitOnLoop``: a routed call). ``WaitForEvents`` (from
        either, when ``may_park``) goes to the parking."""
        try:
            with on_event_loop(), parking(may_park):
                return call_application(self.app, request)
        except WouldBlock:
            pass
        except AwaitOnLoop as pending:  # a routed call: its round trip on the loop
            answer: Answer = await pending.answer()
            return answer
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.pool, _call_parking, may_park, self.app,
                                              request)
        finally:
            self.parking.poke()  # it may have appended events a parked request waits for

    async def housekeeping(self) -> None:
        loop = asyncio.get_running_loop()
        next_report = loop.time() + REPORT_INTERVAL
        closed_before = 0
        while True:
            await asyncio.sleep(1.0)
            self.close_revoked()
            closed = self.closed_since_reclaim
            if closed >= RECLAIM_ANYWAY or (closed >= RECLAIM_AFTER and closed == closed_before):
                self.closed_since_reclaim = closed = 0
                reclaim_memory()
            closed_before = closed
            if loop.time() >= next_report:
                next_report = loop.time() + REPORT_INTERVAL
                for line in self.counts.report():
                    log.warning("last %.0f s: %s", REPORT_INTERVAL, line)
                self.counts = Counts()

    def close_revoked(self) -> None:
        for held in list(self.held.values()):
            if held.serial is not None and self.tls.is_revoked(held.serial):
                log.info("closed a connection of revoked certificate %X", held.serial)
                self.counts.revoked_closed += 1
                held.abort()


def _call_parking(may_park: bool, app: WSGIApp, request: Request) -> Answer:
    with parking(may_park):
        return call_application(app, request)


_TRIM = libc_function("malloc_trim")


def reclaim_memory() -> None:
    """Give the memory of closed connections back: asyncio's TLS transports sit in
    reference cycles until a collection, and glibc keeps freed arenas until trimmed."""
    gc.collect()
    if _TRIM is not None:
        _TRIM(0)
