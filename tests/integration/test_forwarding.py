"""Forwarding (``bios_ws.server.forwarding``) against a real HTTPS server on loopback that
stands for the remote vBIOS: it requires this host's credential (its CA's client
certificate naming ``urn:vbios:host:host-a``), checks ``X-Vbios-On-Behalf-Of`` and
answers canned SOAP. The routes come from a store through the per-call keeper, so a
route change applies to the next call."""

from __future__ import annotations

import http.server
import io
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bios_ws.capabilities import CAPABILITIES, operation_capabilities
from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.principal import Principal
from bios_ws.domain.routing import Remote, Route, RoutingTable
from bios_ws.domain.state import DomainState
from bios_ws.errors import RemoteUnavailable, StoreUnavailable
from bios_ws.pki.certs import cert_pem, clear_key_pem
from bios_ws.pki.remote_credentials import client_context, keep_key, key_path
from bios_ws.server.forwarding import ON_BEHALF_OF, Forwarder, RemotePools
from bios_ws.service.routing import RouteKeeper, RoutingService
from bios_ws.soap.app import PRINCIPAL_ENVIRON_KEY
from bios_ws.soap.guard import FAULT_ENVIRON_KEY, OPERATION_ENVIRON_KEY
from tests.routing_support import NOW, RemoteInstallation, host_credential

ADMIN = Principal.admin()
PASSPHRASE = b"server key passphrase"
TNS = "urn:bios-ws:vbios:v1"
VALUE = (b"<?xml version='1.0' encoding='UTF-8'?><soap11env:Envelope xmlns:soap11env="
         b'"http://schemas.xmlsoap.org/soap/envelope/"><soap11env:Body>'
         b'<tns:GetAttributesResponse xmlns:tns="urn:bios-ws:vbios:v1"><tns:Version>7'
         b"</tns:Version></tns:GetAttributesResponse></soap11env:Body></soap11env:Envelope>")
FAULT = (b"<?xml version='1.0' encoding='UTF-8'?><soap11env:Envelope xmlns:soap11env="
         b'"http://schemas.xmlsoap.org/soap/envelope/"><soap11env:Body><soap11env:Fault>'
         b"<faultcode>soap11env:Client</faultcode><faultstring>stale</faultstring>"
         b"<detail><VbiosFaultDetail><Code>VersionConflict</Code></VbiosFaultDetail></detail>"
         b"</soap11env:Fault></soap11env:Body></soap11env:Envelope>")


def request(operation: str) -> bytes:
    return (f'<soap11env:Envelope xmlns:soap11env="http://schemas.xmlsoap.org/soap/envelope/"'
            f' xmlns:tns="{TNS}"><soap11env:Body><tns:{operation}/></soap11env:Body>'
            "</soap11env:Envelope>").encode()


@dataclass
class Seen:
    path: str
    on_behalf_of: str | None
    host_uri: str
    body: bytes


@dataclass
class CannedRemote:
    """The remote: answers VALUE, or FAULT (HTTP 500), or nothing for ``delay`` seconds."""

    answer: str = "value"
    delay: float = 0.0
    #: Close each connection after its answer, without saying so (an idle bound, a restart).
    drop_after_answer: bool = False
    seen: list[Seen] = field(default_factory=list)
    connections: set[int] = field(default_factory=set)  # client ports seen


def _handler(remote: CannedRemote) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            der = self.connection.getpeercert(binary_form=True)  # type: ignore[attr-defined]
            cert = x509.load_der_x509_certificate(der)
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            remote.connections.add(self.client_address[1])  # the client port: one per connection
            remote.seen.append(Seen(self.path, self.headers.get(ON_BEHALF_OF),
                                    san.get_values_for_type(x509.UniformResourceIdentifier)[0],
                                    body))
            if remote.delay:
                time.sleep(remote.delay)
            data, status = (VALUE, 200) if remote.answer == "value" else (FAULT, 500)
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
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a refused handshake or a connection the pool closed: expected here


@pytest.fixture
def installation() -> RemoteInstallation:
    return RemoteInstallation()


@pytest.fixture
def canned(installation: RemoteInstallation, tmp_path: Path
           ) -> Iterator[tuple[CannedRemote, str]]:
    remote = CannedRemote()
    (tmp_path / "server.pem").write_bytes(cert_pem(installation.server.cert))
    (tmp_path / "server-key.pem").write_bytes(clear_key_pem(installation.server.key))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH,
                                         cadata=cert_pem(installation.ca.cert).decode())
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_cert_chain(tmp_path / "server.pem", tmp_path / "server-key.pem")
    server = _QuietServer(("127.0.0.1", 0), _handler(remote))
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield remote, f"https://127.0.0.1:{server.server_address[1]}/vbios"
    server.shutdown()
    server.server_close()


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

    def call(self, operation: str, domain: str = "vm1") -> tuple[str, bytes, dict[str, Any]]:
        body = request(operation)
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST", "CONTENT_TYPE": "text/xml; charset=utf-8",
            "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            "HTTP_SOAPACTION": f'"{operation}"',
            PRINCIPAL_ENVIRON_KEY: Principal.guest(domain)}
        started: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
            started["status"], started["headers"] = status, dict(headers)

        data = b"".join(self.forwarder(environ, start_response))
        environ["headers"] = started["headers"]
        return started["status"], data, environ


@pytest.fixture
def host(installation: RemoteInstallation, tmp_path: Path) -> Iterator[Host]:
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
    remote_cert = cert_pem(credential.cert)

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

    pools = RemotePools(context_for, timeout=1.0)
    forwarder = Forwarder(local, table=table, operations=operation_capabilities(),
                          pools=pools)
    yield Host(store, routing, forwarder, pools, local_calls, remote_cert,
               cert_pem(installation.ca.cert))
    pools.close()


def add_remote(host: Host, url: str) -> None:
    host.routing.add_remote(ADMIN, Remote("cloud-b", url, host.remote_cert, host.ca_pem))


def test_a_routed_read_is_answered_by_the_remote_for_the_domain(
        host: Host, canned: tuple[CannedRemote, str]) -> None:
    remote, url = canned
    add_remote(host, url)
    host.routing.set_route(ADMIN, "settings", "cloud-b", domain="vm1")
    status, body, environ = host.call("GetAttributes")
    assert (status, body) == ("200 OK", VALUE)
    assert environ["headers"]["Content-Type"] == "text/xml; charset=utf-8"
    assert environ[OPERATION_ENVIRON_KEY] == "GetAttributes"
    [seen] = remote.seen
    assert (seen.path, seen.on_behalf_of, seen.host_uri) == (
        "/vbios", "vm1", "urn:vbios:host:host-a")
    assert seen.body == request("GetAttributes")
    assert host.local_calls == []


def test_a_typed_fault_is_relayed_unchanged(host: Host, canned: tuple[CannedRemote, str]
                                            ) -> None:
    remote, url = canned
    remote.answer = "fault"
    add_remote(host, url)
    host.routing.set_route(ADMIN, "settings", "cloud-b")
    status, body, _ = host.call("SetAttributes", domain="vm2")
    assert (status, body) == ("500 Internal Server Error", FAULT)
    assert remote.seen[0].on_behalf_of == "vm2"


def test_other_capabilities_and_domains_stay_local(host: Host,
                                                   canned: tuple[CannedRemote, str]) -> None:
    remote, url = canned
    add_remote(host, url)
    host.routing.set_route(ADMIN, "settings", "cloud-b", domain="vm1")
    assert host.call("GetEvents")[1] == b"local"  # events: not routed
    assert host.call("GetAttributes", domain="vm2")[1] == b"local"  # another domain
    assert host.call("GetQuote")[1] == b"local"  # attestation: local by nature
    assert host.call("GetPowerState")[1] == b"local"  # power: the machine's, local
    assert host.local_calls == [request("GetEvents").decode(),
                                request("GetAttributes").decode(),
                                request("GetQuote").decode(),
                                request("GetPowerState").decode()]  # the body handed on whole
    assert host.call("GetSecureBoot")[1] == VALUE  # Secure Boot goes with settings
    assert len(remote.seen) == 1


def test_route_changes_apply_to_the_next_call(host: Host, canned: tuple[CannedRemote, str]
                                              ) -> None:
    remote, url = canned
    add_remote(host, url)
    assert host.call("GetEvents")[1] == b"local"
    host.routing.set_route(ADMIN, "events", "cloud-b")
    assert host.call("GetEvents")[1] == VALUE
    host.routing.set_route(ADMIN, "events", "local", domain="vm1")  # no such route: kept
    assert host.call("GetEvents")[1] == VALUE
    host.routing.set_route(ADMIN, "events", "local")
    assert host.call("GetEvents")[1] == b"local"
    assert len(remote.seen) == 2


def test_calls_reuse_one_kept_alive_connection(host: Host, canned: tuple[CannedRemote, str]
                                               ) -> None:
    remote, url = canned
    add_remote(host, url)
    host.routing.set_route(ADMIN, "events", "cloud-b")
    for _ in range(5):
        assert host.call("GetEvents")[1] == VALUE
    assert len(remote.seen) == 5 and len(remote.connections) == 1


def test_a_kept_alive_connection_the_remote_closed_is_replaced(
        host: Host, canned: tuple[CannedRemote, str]) -> None:
    remote, url = canned
    remote.drop_after_answer = True
    add_remote(host, url)
    host.routing.set_route(ADMIN, "settings", "cloud-b")
    for _ in range(3):
        assert host.call("GetAttributes")[1] == VALUE
    assert len(remote.seen) == 3 and len(remote.connections) == 3


def remote_unavailable(status: str, body: bytes, environ: dict[str, Any]) -> None:
    assert status == "500 Internal Server Error"
    assert b"<Code>RemoteUnavailable</Code>" in body or b"RemoteUnavailable" in body
    assert environ[FAULT_ENVIRON_KEY] == "RemoteUnavailable"


def test_a_remote_that_is_down_gives_remote_unavailable(host: Host,
                                                        canned: tuple[CannedRemote, str]
                                                        ) -> None:
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]  # nobody listens on it once closed
    add_remote(host, f"https://127.0.0.1:{port}/")
    host.routing.set_route(ADMIN, "settings", "cloud-b")
    started = time.monotonic()
    remote_unavailable(*host.call("GetAttributes"))
    assert time.monotonic() - started < 1.0
    assert host.local_calls == []  # never a silent local answer


def test_a_slow_remote_gives_remote_unavailable_within_the_bound(
        host: Host, canned: tuple[CannedRemote, str]) -> None:
    remote, url = canned
    remote.delay = 3.0
    add_remote(host, url)
    host.routing.set_route(ADMIN, "settings", "cloud-b")
    started = time.monotonic()
    remote_unavailable(*host.call("GetAttributes"))
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.0, elapsed  # the pools' timeout is 1 s (a busy machine: margin)
    assert host.local_calls == []


def test_a_remote_refusing_the_credential_gives_remote_unavailable(
        host: Host, canned: tuple[CannedRemote, str]) -> None:
    _, url = canned
    other = RemoteInstallation()  # a CA the remote does not trust, and not its server's
    host.routing.add_remote(ADMIN, Remote("cloud-b", url, cert_pem(
        host_credential(other.ca, "host-a").cert), cert_pem(other.ca.cert)))
    host.routing.set_route(ADMIN, "settings", "cloud-b")
    remote_unavailable(*host.call("GetAttributes"))


class _Peer:
    def __init__(self, der: bytes) -> None:
        self._der = der

    def getpeercert(self, binary_form: bool = False) -> bytes:
        return self._der


def test_a_serving_graph_forwards_with_the_home_s_kept_credential(
        run: Any, tmp_path: Path, installation: RemoteInstallation,
        canned: tuple[CannedRemote, str]) -> None:
    """The whole path of `vbios serve`'s application: the guest's certificate through
    PeerIdentity, the route and remote set by the command line, the key decrypted from
    the home with the server key's passphrase."""
    from bios_ws.bootstrap import bootstrap
    from bios_ws.config import Config
    from bios_ws.home import Home
    from bios_ws.server.identity import SOCKET_ENVIRON_KEY
    from tests.routing_support import write_bundle

    remote, url = canned
    path = tmp_path / "home-a"
    for argv in (("init", "--home", str(path), "--host-name", "host-a"),
                 ("domain", "create", "vm1", "--home", str(path))):
        code, _, err = run(*argv)
        assert code == 0, err
    write_bundle(tmp_path / "bundle", installation.ca, "host-a")
    for argv in (("remote", "add", "cloud-b", url, "--bundle", str(tmp_path / "bundle")),
                 ("route", "set", "settings", "cloud-b", "--domain", "vm1")):
        code, _, err = run(*argv, "--home", str(path))
        assert code == 0, err
    home = Home.open(path)
    guest = x509.load_pem_x509_certificate((home.bundles_dir / "vm1" / "cert.pem").read_bytes())
    body = request("GetAttributes")
    with bootstrap(Config.of(home)) as app:
        wsgi = app.wsgi()
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/", "CONTENT_TYPE": "text/xml",
            "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
            SOCKET_ENVIRON_KEY: _Peer(guest.public_bytes(Encoding.DER))}
        started: dict[str, Any] = {}
        data = b"".join(wsgi(environ, lambda status, headers, *_: started.update(
            status=status)))
    assert (started["status"], data) == ("200 OK", VALUE)
    [seen] = remote.seen
    assert (seen.on_behalf_of, seen.host_uri) == ("vm1", "urn:vbios:host:host-a")


def test_a_credential_that_cannot_be_loaded_is_not_tried_on_every_call() -> None:
    now = [100.0]
    tries: list[str] = []

    def context_for(remote: Remote) -> ssl.SSLContext:
        tries.append(remote.name)
        raise OSError("the key file is damaged")

    pools = RemotePools(context_for, clock=lambda: now[0])
    remote = Remote("cloud-b", "https://127.0.0.1:1/", b"c", b"a")
    for _ in range(3):
        with pytest.raises(RemoteUnavailable, match="credential there cannot be used"):
            pools.pool(remote)
    assert tries == ["cloud-b"]
    now[0] += 5.0
    with pytest.raises(RemoteUnavailable):
        pools.pool(remote)
    assert tries == ["cloud-b", "cloud-b"]


def test_a_route_to_a_remote_the_store_lacks_is_never_answered_here(host: Host) -> None:
    with host.store.unit_of_work() as uow:  # what `remote remove` refuses to leave behind
        uow.routing.set_route("host-a", Route("settings", None, "gone"))
        uow.records.put(host.routing.record_key, "", NOW)
        uow.commit()
    remote_unavailable(*host.call("GetAttributes"))
    assert host.local_calls == []


def test_a_store_that_cannot_say_the_routes_gives_its_fault(host: Host) -> None:
    def table() -> RoutingTable:
        raise StoreUnavailable("the state store is unavailable")

    forwarder = Forwarder(lambda environ, start: [b"local"], table=table,
                          operations=operation_capabilities(), pools=host.pools)
    host.forwarder = forwarder
    status, body, environ = host.call("GetAttributes")
    assert status.startswith("500") and b"StoreUnavailable" in body
    assert environ[FAULT_ENVIRON_KEY] == "StoreUnavailable"
