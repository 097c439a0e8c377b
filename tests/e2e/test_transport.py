"""Mutual TLS end to end: who may connect, and what each certificate may see and do."""

from __future__ import annotations

import http.client
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bios_ws.home import Home
from bios_ws.pki import certs, load_certificate, load_private_key

REFUSED = (OSError, http.client.HTTPException)  # ssl.SSLError and resets are OSErrors


def write_bundle(directory: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey,
                 ) -> Path:
    directory.mkdir(parents=True)
    (directory / "cert.pem").write_bytes(certs.cert_pem(cert))
    (directory / "key.pem").write_bytes(certs.clear_key_pem(key))
    return directory


def client_cert(issuer: x509.Certificate, issuer_key: ec.EllipticCurvePrivateKey,
                san: list[x509.GeneralName]) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A client certificate made by hand (not through bios_ws.pki)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hand-made")]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(issuer_key, hashes.SHA256()), key


def assert_refused(server: Any, context: ssl.SSLContext) -> None:
    """The connection fails before any HTTP response is read."""
    with pytest.raises(REFUSED):
        reply = server.call(context, "GetAttributes")
        pytest.fail(f"got an HTTP {reply.status} answer: {reply.body[:300]!r}")


def test_guest_gets_its_attributes(vbios_server: Any) -> None:
    bundle = vbios_server.create_domain("t-get")
    reply = vbios_server.call(bundle, "GetAttributes")
    assert reply.status == 200, reply.body[:500]
    assert int(reply.text("Version")) >= 1
    assert reply.text("SetupPasswordSet") == "false"
    assert reply.texts("Name"), "no attribute in the answer"


def test_without_a_client_certificate_only_enrollment_is_open(vbios_server: Any) -> None:
    """The handshake completes (a guest enrolls without a certificate); every operation
    but Enroll is refused before it runs, and the CA certificate is served for the pin."""
    for operation in ("GetAttributes", "GetIntegrityStatus", "GetProvisioningState"):
        reply = vbios_server.call(vbios_server.context(None), operation)
        assert reply.status == 500
        assert reply.fault_code == "AccessDenied", operation
        assert "only Enroll works without a client certificate" in reply.text("Message")
    connection = vbios_server.connect(vbios_server.context(None))
    try:
        connection.request("GET", "/ca.pem")
        response = connection.getresponse()
        assert response.status == 200
        assert response.read() == (vbios_server.home / "pki" / "ca.pem").read_bytes()
    finally:
        connection.close()


def test_certificate_of_another_ca_is_refused(
    vbios_server: Any, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    other_ca = certs.make_ca(now)
    intruder = certs.make_domain_cert(other_ca, "t-get", now, "0123456789abcdef")
    bundle = write_bundle(tmp_path / "intruder", intruder.cert, intruder.key)
    assert_refused(vbios_server, vbios_server.context(bundle))


def test_self_signed_guest_certificate_is_refused(
    vbios_server: Any, tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t-get")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.UniformResourceIdentifier("urn:vbios:domain:t-get")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    bundle = write_bundle(tmp_path / "self-signed", cert, key)
    assert_refused(vbios_server, vbios_server.context(bundle))


@pytest.mark.parametrize(
    "san",
    [
        [],
        [x509.DNSName("guest.example")],
        [x509.UniformResourceIdentifier("urn:vbios:domain:iso-a"),
         x509.UniformResourceIdentifier("urn:vbios:domain:iso-b")],
        [x509.UniformResourceIdentifier("urn:vbios:domain:Bad Name")],
    ],
    ids=["no-san", "dns-only", "two-domains", "invalid-id"],
)
def test_our_ca_certificate_without_one_identity_is_denied(
    vbios_server: Any, tmp_path: Path, san: list[x509.GeneralName]
) -> None:
    home = Home.open(vbios_server.home)
    ca_cert = load_certificate(home.ca_cert)
    ca_key = load_private_key(home.ca_key, home.key_passphrase())
    cert, key = client_cert(ca_cert, ca_key, san)
    bundle = write_bundle(tmp_path / "nobody", cert, key)
    reply = vbios_server.call(bundle, "GetAttributes")
    assert reply.status == 500
    assert reply.fault_code == "AccessDenied"


def test_guest_sees_and_changes_only_its_own_domain(
    vbios_server: Any,
) -> None:
    a = vbios_server.create_domain("iso-a")
    b = vbios_server.create_domain("iso-b")
    before_a = vbios_server.call(a, "GetAttributes")
    before_b = vbios_server.call(b, "GetAttributes")
    changed = vbios_server.call(
        b, "ChangePassword",
        "<v:PasswordName>SetupPassword</v:PasswordName><v:NewPassword>b-secret-1</v:NewPassword>",
    )
    assert changed.status == 200, changed.body[:500]
    after_a = vbios_server.call(a, "GetAttributes")
    after_b = vbios_server.call(b, "GetAttributes")
    assert after_b.text("SetupPasswordSet") == "true"
    assert int(after_b.text("Version")) > int(before_b.text("Version"))
    assert after_a.text("SetupPasswordSet") == "false"
    assert after_a.text("Version") == before_a.text("Version")
    assert after_a.body == before_a.body


def test_guest_cannot_call_admin_operations(vbios_server: Any) -> None:
    a = vbios_server.create_domain("adm-a")
    vbios_server.create_domain("adm-b")
    for target in ("adm-b", "adm-a"):
        reply = vbios_server.call(a, "ApplyPendingAttributes", f"<v:Domain>{target}</v:Domain>")
        assert reply.status == 500
        assert reply.fault_code == "AccessDenied"
        assert reply.text("faultcode").endswith("Client")


def test_admin_applies_but_cannot_call_guest_operations(
    vbios_server: Any,
) -> None:
    vbios_server.create_domain("adm-c")
    applied = vbios_server.call(vbios_server.admin_bundle, "ApplyPendingAttributes",
                                "<v:Domain>adm-c</v:Domain>")
    assert applied.status == 200, applied.body[:500]
    denied = vbios_server.call(vbios_server.admin_bundle, "GetAttributes")
    assert denied.status == 500
    assert denied.fault_code == "AccessDenied"


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1:DeprecationWarning")
def test_tls_1_1_client_is_refused(vbios_server: Any) -> None:
    context = vbios_server.context(vbios_server.admin_bundle)
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError) as refused:
        vbios_server.call(context, "GetAttributes")
    assert "NO_PROTOCOLS_AVAILABLE" not in str(refused.value), "the client never offered 1.1"


def test_tls_1_2_client_is_served(vbios_server: Any) -> None:
    bundle = vbios_server.create_domain("t-tls12")
    context = vbios_server.context(bundle)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    assert vbios_server.call(context, "GetAttributes").status == 200


def test_keep_alive_serves_50_requests_on_one_connection(
    vbios_server: Any,
) -> None:
    bundle = vbios_server.create_domain("t-keep")
    connection = vbios_server.connect(bundle)
    try:
        body = vbios_server.envelope("GetAttributes")
        first = vbios_server.post(connection, "GetAttributes", body)
        assert first.status == 200
        sock = connection.sock
        assert sock is not None
        for _ in range(49):
            reply = vbios_server.post(connection, "GetAttributes", body)
            assert reply.status == 200
            assert reply.body == first.body
            assert connection.sock is sock, "the server closed the kept-alive connection"
    finally:
        connection.close()
