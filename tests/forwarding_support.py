"""What the forwarding tests share: a real HTTPS server on loopback that stands for the
remote vBIOS (it requires this host's credential, records what it was sent and answers
canned SOAP, or misbehaves as told), and host A: its store, its routing and the
forwarder in front of a recording local application."""

from __future__ import annotations

import asyncio
import http.server
import io
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from bios_ws.blocking import AwaitOnLoop, WouldBlock, on_event_loop
from bios_ws.capabilities import (
    CAPABILITIES,
    operation_capabilities,
    platform_operations,
    read_operations,
)
from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.principal import Principal
from bios_ws.domain.routing import Remote, RoutingTable
from bios_ws.domain.state import DomainState
from bios_ws.pki.certs import cert_pem, clear_key_pem
from bios_ws.pki.remote_credentials import client_context, keep_key, key_path
from bios_ws.server.answer_cache import AnswerCache
from bios_ws.server.forwarding import ACTING_AS, ON_BEHALF_OF, Forwarder, RemotePools
from bios_ws.service.routing import RouteKeeper, RoutingService
from bios_ws.soap.app import PRINCIPAL_ENVIRON_KEY
from bios_ws.soap.guard import FAULT_ENVIRON_KEY
from tests.routing_support import NOW, RemoteInstallation, host_credential

ADMIN = Principal.admin()
PASSPHRASE = b"server key passphrase"
TNS = "urn:bios-ws:vbios:v1"
FAULT = (b"<?xml version='1.0' encoding='UTF-8'?><soap11env:Envelope xmlns:soap11env="
         b'"http://schemas.xmlsoap.org/soap/envelope/"><soap11env:Body><soap11env:Fault>'
         b"<faultcode>soap11env:Client</faultcode><faultstring>stale</faultstring>"
         b"<detail><VbiosFaultDetail><Code>VersionConflict</Code></VbiosFaultDetail></detail>"
         b"</soap11env:Fault></soap11env:Body></soap11env:Envelope>")


def value(version: int) -> bytes:
    """The canned answer: a GetAttributesResponse with ``version``."""
    return (b"<?xml version='1.0' encoding='UTF-8'?><soap11env:Envelope xmlns:soap11env="
            b'"http://schemas.xmlsoap.org/soap/envelope/"><soap11env:Body>'
            b'<tns:GetAttributesResponse xmlns:tns="urn:bios-ws:vbios:v1"><tns:Version>%d'
            b"</tns:Version></tns:GetAttributesResponse></soap11env:Body></soap11env:Envelope>"
            % version)


VALUE = value(7)


def request(operation: str, inner: str = "") -> bytes:
    return (f'<soap11env:Envelope xmlns:soap11env="http://schemas.xmlsoap.org/soap/envelope/"'
            f' xmlns:tns="{TNS}"><soap11env:Body><tns:{operation}>{inner}</tns:{operation}>'
            "</soap11env:Body></soap11env:Envelope>").encode()


@dataclass
class Seen:
    path: str
    on_behalf_of: str | None
    host_uri: str
    body: bytes
    acting_as: str | None = None


@dataclass
class CannedRemote:
    """The remote: answers ``value(version)``, or FAULT (HTTP 500), or nothing for
    ``delay`` seconds; or misbehaves for the next requests, as counted."""

    answer: str = "value"
    version: int = 7
    #: The answer's body instead of ``value(version)``.
    body: bytes | None = None
    delay: float = 0.0
    #: Close each connection after its answer, without saying so (an idle bound, a restart).
    drop_after_answer: bool = False
    #: The next N requests: read whole (seen), then the connection closed with no answer.
    close_without_answer: int = 0
    #: The next N requests: the connection reset once their head is read (body unread).
    reset_before_body: int = 0
    seen: list[Seen] = field(default_factory=list)
    connections: set[int] = field(default_factory=set)  # client ports seen
    #: Connections the remote closed (after their handler ended), counted.
    closed: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))


def _handler(remote: CannedRemote) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            remote.connections.add(self.client_address[1])  # the client port: one per connection
            if remote.reset_before_body:
                remote.reset_before_body -= 1
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))  # close: a reset
                self.close_connection = True
                return
            body = self.rfile.read(int(self.headers["Content-Length"]))
            der = self.connection.getpeercert(binary_form=True)
            cert = x509.load_der_x509_certificate(der)
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            remote.seen.append(Seen(self.path, self.headers.get(ON_BEHALF_OF),
                                    san.get_values_for_type(x509.UniformResourceIdentifier)[0],
                                    body, self.headers.get(ACTING_AS)))
            if remote.close_without_answer:
                remote.close_without_answer -= 1
                self.close_connection = True
                return
            if remote.delay:
                threading.Event().wait(remote.delay)
            data, status = (remote.body or value(remote.version), 200) \
                if remote.answer == "value" else (FAULT, 500)
            self.send_response(status)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            if remote.drop_after_answer:
                self.wfile.flush()
                self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, remote: CannedRemote, *args: Any) -> None:
        self.remote = remote
        self.open: set[Any] = set()
        self._open_lock = threading.Lock()
        super().__init__(*args)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a refused handshake or a connection the pool closed: expected here

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self.open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with suppress(OSError, ValueError):
            super().shutdown_request(request)
        with self._open_lock:
            self.open.discard(request)
        self.remote.closed.release()

    def stop(self) -> None:
        """Down: no new connection, and every open one ended (as a remote stopped)."""
        self.shutdown()
        self.server_close()
        self.end_connections()

    def end_connections(self) -> None:
        """End every open connection (as a remote's idle bound does), keep serving."""
        with self._open_lock:
            still = list(self.open)
        for sock in still:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@dataclass
class StandIn:
    remote: CannedRemote
    url: str
    server: _QuietServer

    def stop(self) -> None:
        self.server.stop()

    def end_connections(self) -> None:
        self.server.end_connections()


@contextmanager
def stand_in(installation: RemoteInstallation, tmp_path: Path) -> Iterator[StandIn]:
    """The remote's stand-in, serving with the installation's server certificate and
    requiring a client certificate of its CA."""
    remote = CannedRemote()
    (tmp_path / "server.pem").write_bytes(cert_pem(installation.server.cert))
    (tmp_path / "server-key.pem").write_bytes(clear_key_pem(installation.server.key))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH,
                                         cadata=cert_pem(installation.ca.cert).decode())
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server-key.pem")
    server = _QuietServer(remote, ("127.0.0.1", 0), _handler(remote))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield StandIn(remote, f"https://127.0.0.1:{server.server_address[1]}/vbios", server)
    finally:
        server.stop()


class Clock:
    """The answer cache's clock (seconds), moved by the test."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Host:
    """Host A: its store, routing, the forwarder in front of a recording local app."""

    store: MemoryStore
    routing: RoutingService
    forwarder: Forwarder
    pools: RemotePools
    local_calls: list[str]
    remote_cert: bytes  # this host's credential at cloud-b
    ca_pem: bytes  # cloud-b's CA
    clock: Clock
    #: Set: calls run as a front worker runs them, first on this event loop (a routed
    #: call's round trip awaited there, ``AwaitOnLoop``), on a "thread" if they would
    #: block; None: on a thread.
    loop: asyncio.AbstractEventLoop | None = None

    def call(self, operation: str, domain: str = "vm1", inner: str = "",
             principal: Principal | None = None) -> tuple[str, bytes, dict[str, Any]]:
        """The forwarder's answer (status, body) and the call's environ (its answer's
        headers at "headers"), ``operation`` called by ``principal`` (default:
        ``domain``'s guest)."""
        body = request(operation, inner)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST", "CONTENT_TYPE": "text/xml; charset=utf-8",
            "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            "HTTP_SOAPACTION": f'"{operation}"',
            PRINCIPAL_ENVIRON_KEY: principal or Principal.guest(domain)}
        if self.loop is None:
            return self._run(environ)
        try:
            with on_event_loop():
                return self._run(dict(environ, **{"wsgi.input": io.BytesIO(body)}))
        except WouldBlock:
            return self._run(environ)
        except AwaitOnLoop as pending:
            answer = self.loop.run_until_complete(pending.answer())
            environ = pending.environ  # type: ignore[attr-defined]
            environ["headers"] = dict(answer.headers)
            return f"{answer.status} {answer.reason}", answer.body, environ

    def _run(self, environ: dict[str, Any]) -> tuple[str, bytes, dict[str, Any]]:
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
            started["status"], started["headers"] = status, dict(headers)

        try:
            data = b"".join(self.forwarder(environ, start_response))
        except AwaitOnLoop as pending:
            pending.environ = environ  # type: ignore[attr-defined]
            raise
        environ["headers"] = started["headers"]
        return started["status"], data, environ

    def add_remote(self, url: str) -> None:
        self.routing.add_remote(ADMIN, Remote("cloud-b", url, self.remote_cert, self.ca_pem))


@contextmanager
def host_a(installation: RemoteInstallation, tmp_path: Path, *, on_loop: bool = False
           ) -> Iterator[Host]:
    store = MemoryStore()
    with store.unit_of_work() as uow:
        for name in ("vm1", "vm2"):
            uow.domains.add(DomainState(name, 1, {"A": 1}), NOW)
        uow.commit()
    routing = RoutingService(store.unit_of_work, lambda: NOW,
                             {c.name: None if c.routable else c.why_local()
                              for c in CAPABILITIES}, host="host-a")
    keeper = RouteKeeper(routing)
    credential = host_credential(installation.ca, "host-a")
    pki = tmp_path / "pki"
    keep_key(key_path(pki, "cloud-b"), credential.key, PASSPHRASE)

    def table() -> RoutingTable:
        with store.unit_of_work() as uow:
            return keeper.table(uow)

    def context_for(remote: Remote) -> ssl.SSLContext:
        return client_context(remote.cert_pem, remote.ca_pem, key_path(pki, remote.name),
                              PASSPHRASE)

    local_calls: list[str] = []

    def local(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        local_calls.append(environ["wsgi.input"].read().decode())
        start_response("200 OK", [("Content-Type", "text/xml")])
        return [b"local"]

    clock = Clock()
    pools = RemotePools(context_for, timeout=1.0)
    forwarder = Forwarder(local, table=table, operations=operation_capabilities(),
                          reads=read_operations(), platform=platform_operations(),
                          pools=pools, cache=AnswerCache(clock=clock))
    loop = asyncio.new_event_loop() if on_loop else None
    try:
        yield Host(store, routing, forwarder, pools, local_calls, cert_pem(credential.cert),
                   cert_pem(installation.ca.cert), clock, loop)
    finally:
        pools.close()
        if loop is not None:
            loop.run_until_complete(_close_loop_pools())
            loop.close()


async def _close_loop_pools() -> None:
    from bios_ws.server.remote_pool_async import pools_of_loop
    pools_of_loop().close()
    await asyncio.sleep(0)  # the transports close


# -- fixtures of the forwarding tests (imported by their modules) -----------------------

@pytest.fixture
def installation() -> RemoteInstallation:
    return RemoteInstallation()


@pytest.fixture
def stand(installation: RemoteInstallation, tmp_path: Path) -> Iterator[StandIn]:
    with stand_in(installation, tmp_path) as remote:
        yield remote


@pytest.fixture
def canned(stand: StandIn) -> tuple[CannedRemote, str]:
    return stand.remote, stand.url


@pytest.fixture(params=["thread", "loop"])
def host(installation: RemoteInstallation, tmp_path: Path, request: pytest.FixtureRequest
         ) -> Iterator[Host]:
    """Host A, its calls run on a thread (``RemotePool``) or as a front worker runs them
    (a routed call's round trip on the event loop: ``AsyncRemotePool``): one contract."""
    with host_a(installation, tmp_path, on_loop=request.param == "loop") as made:
        yield made


def remote_unavailable(status: str, body: bytes, environ: dict[str, Any]) -> None:
    assert status == "500 Internal Server Error"
    assert b"<Code>RemoteUnavailable</Code>" in body or b"RemoteUnavailable" in body
    assert environ[FAULT_ENVIRON_KEY] == "RemoteUnavailable"
