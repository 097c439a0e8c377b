"""Credential life cycle against a real server (mutual TLS, swtpm): a revoked
certificate is refused at the handshake on new connections and its kept-alive
connections are closed within about a second; a domain deleted and created again is
a new identity; a rotated admin bundle replaces the old one."""

from __future__ import annotations

import http.client
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from tests.e2e.conftest import (
    ServerProcess,
    envelope,
    post,
    run_vbios,
    served_home,
)

#: The worker's loop looks at kept-alive connections at least once a second.
CLOSE_WITHIN = 2.5


def serial_of(bundle: Path) -> str:
    return format(x509.load_pem_x509_certificate((bundle / "cert.pem").read_bytes())
                  .serial_number, "X")


def vbios_ok(server: ServerProcess, *args: str) -> str:
    done = run_vbios(*args, "--home", str(server.home))
    assert done.returncode == 0, done.stderr
    return done.stdout


def refused_at_handshake(server: ServerProcess, bundle: Path) -> None:
    """A new connection presenting ``bundle`` never gets an HTTP answer."""
    with pytest.raises((ssl.SSLError, ConnectionError)) as failed:
        server.call(bundle, "GetAttributes")
    if isinstance(failed.value, ssl.SSLError):
        assert "revoked" in str(failed.value).lower(), failed.value


def closed_by_server(connection: http.client.HTTPSConnection, within: float) -> float:
    """Seconds until the server closed ``connection`` (reads EOF); fails after ``within``."""
    sock = connection.sock
    assert sock is not None
    sock.settimeout(within)
    start = time.monotonic()
    try:
        data = sock.recv(1)
    except (ssl.SSLError, ConnectionError):
        data = b""
    except TimeoutError:
        pytest.fail(f"the kept-alive connection was still open after {within} s")
    assert data == b"", data
    return time.monotonic() - start


def test_a_revoked_certificate_is_refused_at_the_handshake_and_its_connection_closed(
    vbios_server: ServerProcess,
) -> None:
    gone = vbios_server.create_domain("c-revoked")
    other = vbios_server.create_domain("c-other")
    kept = vbios_server.connect(gone)
    try:
        assert post(kept, "GetAttributes", envelope("GetAttributes")).status == 200
        out = vbios_ok(vbios_server, "cert", "revoke", serial_of(gone))
        assert f"revoked {serial_of(gone)}" in out
        revoked_at = time.monotonic()
        refused_at_handshake(vbios_server, gone)
        waited = closed_by_server(kept, CLOSE_WITHIN)
        assert time.monotonic() - revoked_at < CLOSE_WITHIN + 1, waited
    finally:
        kept.close()
    assert vbios_server.call(other, "GetAttributes").status == 200
    assert vbios_server.call(vbios_server.admin_bundle, "GetIntegrityStatus").status == 200


def test_a_domain_created_again_is_a_new_identity(vbios_server: ServerProcess) -> None:
    first = vbios_server.create_domain("c-again")
    assert vbios_server.call(first, "GetAttributes").status == 200
    out = vbios_ok(vbios_server, "domain", "delete", "c-again")
    assert "every certificate it had is revoked" in out
    refused_at_handshake(vbios_server, first)
    second_dir = vbios_server.work / "bundles" / "c-again-2"
    done = run_vbios("domain", "create", "c-again", "--home", str(vbios_server.home),
                     "--out", str(second_dir))
    assert done.returncode == 0, done.stderr
    assert vbios_server.call(second_dir, "GetAttributes").status == 200
    refused_at_handshake(vbios_server, first)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of its own: rotating the admin revokes the shared one's admin bundle."""
    with served_home(tmp_path) as server:
        yield server


def test_admin_rotation_replaces_the_admin_bundle(own_server: ServerProcess,
                                                  tmp_path: Path) -> None:
    old = tmp_path / "old-admin"
    old.mkdir()
    for part in ("cert.pem", "key.pem", "ca.pem"):
        (old / part).write_bytes((own_server.admin_bundle / part).read_bytes())
    assert own_server.call(old, "GetIntegrityStatus").status == 200
    out = vbios_ok(own_server, "admin", "rotate")
    assert serial_of(own_server.admin_bundle) in out
    refused_at_handshake(own_server, old)
    assert own_server.call(own_server.admin_bundle, "GetIntegrityStatus").status == 200
