"""The server TLS context on a real home: mutual TLS handshakes in-process, refusals."""

from __future__ import annotations

import socket
import ssl
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bios_ws.bootstrap import initialize_home
from bios_ws.domain.principal import Principal
from bios_ws.errors import KeyUnreadable, PortInUse
from bios_ws.home import Home
from bios_ws.pki import certs
from bios_ws.server.identity import identity_of
from bios_ws.server.options import bind_listener, bound_address, parse_bind
from bios_ws.server.tls import build_server_context, server_ssl_context
from tests.credentials_support import issue_bundle

TIMEOUT = 10.0


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return initialize_home(tmp_path_factory.mktemp("tls") / "home")


def client(bundle: Path | None, ca: Path, *, max_version: ssl.TLSVersion | None = None,
           ) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    if bundle is not None:
        context.load_cert_chain(str(bundle / "cert.pem"), str(bundle / "key.pem"))
    if max_version is not None:
        context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = max_version
    return context


def handshake(server: ssl.SSLContext, client_ctx: ssl.SSLContext) -> bytes | None:
    """Run both sides over a socketpair; the peer certificate the server saw (DER).

    Raises the client's error when the handshake (or the first read) fails.
    """
    left, right = socket.socketpair()
    left.settimeout(TIMEOUT)
    right.settimeout(TIMEOUT)
    seen: dict[str, object] = {}

    def serve() -> None:
        try:
            with server.wrap_socket(left, server_side=True) as tls:
                seen["cert"] = tls.getpeercert(binary_form=True)
                tls.sendall(b"hello")
        except (OSError, ssl.SSLError) as exc:
            seen["error"] = exc

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with client_ctx.wrap_socket(right, server_hostname="127.0.0.1") as tls:
            assert tls.recv(5) == b"hello"
    finally:
        right.close()
        thread.join(TIMEOUT)
    assert not thread.is_alive()
    if "error" in seen:
        raise AssertionError(f"server side failed after the client succeeded: {seen['error']}")
    peer = seen["cert"]
    assert peer is None or isinstance(peer, bytes)
    return peer


def test_context_settings(home: Home) -> None:
    context = server_ssl_context(home)
    assert context.verify_mode is ssl.CERT_OPTIONAL  # without a certificate: Enroll only
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.options & ssl.OP_NO_COMPRESSION
    assert context.options & ssl.OP_NO_RENEGOTIATION
    tls12 = [c for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12, "no TLS 1.2 suite left"
    assert all(c["kea"] == "kx-ecdhe" and c["aead"] for c in tls12), tls12


def test_guest_handshake_yields_its_principal(home: Home, tmp_path: Path) -> None:
    issue_bundle(home, "vm-7", tmp_path / "vm-7")
    peer = handshake(server_ssl_context(home), client(tmp_path / "vm-7", home.ca_cert))
    principal = identity_of(peer or b"")
    assert isinstance(principal, Principal)
    assert principal.domain_id == "vm-7"


def test_admin_handshake_yields_admin(home: Home) -> None:
    peer = handshake(server_ssl_context(home), client(home.admin_dir, home.ca_cert))
    principal = identity_of(peer or b"")
    assert isinstance(principal, Principal)
    assert str(principal).startswith("admin:")


def test_no_client_certificate_completes_the_handshake_naming_nobody(home: Home) -> None:
    """The caller may only enroll (the SOAP application refuses everything else)."""
    assert handshake(server_ssl_context(home), client(None, home.ca_cert)) is None


def test_certificate_of_another_ca_is_refused(home: Home, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    other_ca = certs.make_ca(now)
    intruder = certs.make_domain_cert(other_ca, "vm-7", now, "0123456789abcdef")
    bundle = tmp_path / "intruder"
    bundle.mkdir()
    (bundle / "cert.pem").write_bytes(certs.cert_pem(intruder.cert))
    (bundle / "key.pem").write_bytes(certs.clear_key_pem(intruder.key))
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(server_ssl_context(home), client(bundle, home.ca_cert))


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1:DeprecationWarning")
def test_tls_1_1_is_refused(home: Home) -> None:
    context = client(home.admin_dir, home.ca_cert, max_version=ssl.TLSVersion.TLSv1_1)
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError) as refused:
        handshake(server_ssl_context(home), context)
    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value), "client could not even offer 1.1"


def test_wrong_passphrase_is_key_unreadable(home: Home) -> None:
    with pytest.raises(KeyUnreadable, match="server key"):
        build_server_context(ca_cert=home.ca_cert, server_cert=home.server_cert,
                             server_key=home.server_key, passphrase=b"not-the-passphrase")


def test_missing_ca_is_key_unreadable(home: Home, tmp_path: Path) -> None:
    with pytest.raises(KeyUnreadable, match="CA certificate"):
        build_server_context(ca_cert=tmp_path / "absent.pem", server_cert=home.server_cert,
                             server_key=home.server_key, passphrase=home.key_passphrase())


def test_port_in_use_is_refused() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse, match=f"127.0.0.1:{port} is in use"):
            bind_listener(f"127.0.0.1:{port}")


def test_port_zero_binds_a_port_from_the_kernel_and_holds_it() -> None:
    with bind_listener("127.0.0.1:0") as listener:
        address = bound_address(listener)
        host, port = parse_bind(address)
        assert host == "127.0.0.1" and port > 0
        with pytest.raises(PortInUse, match="is in use"):
            bind_listener(address)


def test_a_connection_made_before_the_server_accepts_has_no_nagle_delay() -> None:
    """A client connecting as soon as the port is announced lands in the backlog before
    gunicorn runs; the connection keeps the listener's options of that moment for its
    whole life. Without TCP_NODELAY every keep-alive response written in two parts
    (headers, body) waited for the client's delayed ACK: 40 ms a call instead of 1."""
    with bind_listener("127.0.0.1:0") as listener:
        early = socket.create_connection(listener.getsockname()[:2], timeout=TIMEOUT)
        with early:
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
