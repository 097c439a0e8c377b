"""Enrollment's first contact over real TLS on loopback: ``GET /ca.pem`` without
verifying the server (a self-signed one here), bounded and mapped to TransportError;
a CA that is not the pinned one stops enrollment before anything else is sent."""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Address
from pathlib import Path

import pytest
import vbios_client as vc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from vbios_client import _soap

from tests.ports import closed_port


def self_signed(directory: Path) -> tuple[Path, Path, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not the vBIOS")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (directory / "server.pem").write_bytes(pem)
    (directory / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return directory / "server.pem", directory / "server.key", pem


class FakeServer:
    """A TLS server that answers GET /ca.pem with ``status`` and ``body``; logs requests."""

    def __init__(self, directory: Path) -> None:
        cert, key, self.cert_pem = self_signed(directory)
        self.status, self.body = 200, self.cert_pem
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(f"GET {self.path}")
                self.send_response(server.status)
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def do_POST(self) -> None:
                server.requests.append(f"POST {self.path}")
                self.send_response(500)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeServer]:
    server = FakeServer(tmp_path)
    try:
        yield server
    finally:
        server.close()


def test_the_ca_is_fetched_without_verifying_the_server(fake: FakeServer) -> None:
    assert _soap.fetch_ca_pem(fake.url, timeout=5) == fake.cert_pem
    assert fake.requests == ["GET /ca.pem"]
    assert _soap.fetch_ca_pem(fake.url + "vbios/", timeout=5) == fake.cert_pem
    assert fake.requests[-1] == "GET /vbios/ca.pem"


def test_a_ca_that_is_not_pinned_stops_enrollment_before_anything_is_sent(
        fake: FakeServer, tmp_path: Path) -> None:
    pin = hashlib.sha256(b"the real CA").hexdigest()
    uri = (f"{fake.url}?enroll=vm1&nonce={'0' * 32}&expires=4102444800&token={'a' * 64}"
           f"&ca=sha256:{pin}")
    with pytest.raises(vc.CaPinMismatch, match="nothing was sent"):
        vc.enroll(uri, tmp_path / "bundle", timeout=5)
    assert fake.requests == ["GET /ca.pem"]
    assert not (tmp_path / "bundle").exists()


@pytest.mark.parametrize(("status", "size", "says"), [
    (404, 10, "HTTP 404 for /ca.pem"),
    (302, 0, "HTTP 302"),
    (200, _soap.MAX_CA_BYTES + 1, "longer than"),
])
def test_an_unusable_answer_is_a_transport_error(fake: FakeServer, status: int, size: int,
                                                 says: str) -> None:
    fake.status, fake.body = status, b"x" * size
    with pytest.raises(vc.TransportError, match=says):
        _soap.fetch_ca_pem(fake.url, timeout=5)


def test_no_server_is_a_transport_error() -> None:
    with closed_port() as port, pytest.raises(vc.TransportError, match="cannot fetch"):
        _soap.fetch_ca_pem(f"https://127.0.0.1:{port}/", timeout=5)


def test_a_silent_server_is_a_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"https://127.0.0.1:{listener.getsockname()[1]}/"
        with pytest.raises(vc.TransportError, match=r"no answer within 0\.3 s"):
            _soap.fetch_ca_pem(url, timeout=0.3)
