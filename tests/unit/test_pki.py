"""Certificates of the installation PKI: contents, chains, refusals (in memory)."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from bios_ws.domain.principal import Principal, Role
from bios_ws.errors import AdminError, InvalidRequest
from bios_ws.pki import certs

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
INCARNATION = "00112233aabbccdd"


@pytest.fixture(scope="module")
def ca() -> certs.Issued:
    return certs.make_ca(NOW)


ExtT = TypeVar("ExtT", bound=x509.ExtensionType)


def _ext(cert: x509.Certificate, kind: type[ExtT]) -> x509.Extension[ExtT]:
    return cert.extensions.get_extension_for_class(kind)


def _uris(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)


def _cn(cert: x509.Certificate) -> str:
    value = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert isinstance(value, str)
    return value


def _policy(ca: certs.Issued) -> PolicyBuilder:
    return PolicyBuilder().store(Store([ca.cert])).time(NOW + timedelta(days=1))


def test_ca_is_a_p256_ca_limited_to_signing_certificates(ca: certs.Issued) -> None:
    cert = ca.cert
    constraints = _ext(cert, x509.BasicConstraints)
    assert constraints.critical
    assert constraints.value == x509.BasicConstraints(ca=True, path_length=0)
    usage = _ext(cert, x509.KeyUsage)
    assert usage.critical
    assert usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature and not usage.value.key_encipherment
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, ec.SECP256R1)
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert cert.subject == cert.issuer
    cert.verify_directly_issued_by(cert)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=3640) < lifetime < timedelta(days=3670)
    ski = _ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(public)
    assert _ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == ski.digest


def test_two_installations_get_different_cas() -> None:
    first, second = certs.make_ca(NOW), certs.make_ca(NOW)
    assert first.cert.subject != second.cert.subject
    assert first.cert.serial_number != second.cert.serial_number


def test_server_certificate_defaults_and_chain(ca: certs.Issued) -> None:
    server = certs.make_server_cert(ca, NOW)
    cert = server.cert
    san = _ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert _ext(cert, x509.BasicConstraints).value.ca is False
    assert _ext(cert, x509.KeyUsage).value.digital_signature
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=700) < lifetime < timedelta(days=760)
    aki = _ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier
    assert aki == _ext(ca.cert, x509.SubjectKeyIdentifier).value.digest
    cert.verify_directly_issued_by(ca.cert)
    for subject in (x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))):
        chain = _policy(ca).build_server_verifier(subject).verify(cert, [])
        assert chain[-1] == ca.cert
    with pytest.raises(VerificationError):
        _policy(ca).build_server_verifier(x509.DNSName("example.com")).verify(cert, [])


def test_server_certificate_takes_configured_names(ca: certs.Issued) -> None:
    cert = certs.make_server_cert(ca, NOW, ["vbios.Example.org", "10.0.0.5", "::1"]).cert
    san = _ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["vbios.example.org"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.0.0.5"), ipaddress.ip_address("::1")]
    _policy(ca).build_server_verifier(x509.DNSName("vbios.example.org")).verify(cert, [])
    with pytest.raises(VerificationError):
        _policy(ca).build_server_verifier(x509.DNSName("localhost")).verify(cert, [])


@pytest.mark.parametrize("name", ["", "two words", "a..b", "-lead.example", "x" * 64, "é.example"])
def test_bad_server_names_are_refused(ca: certs.Issued, name: str) -> None:
    with pytest.raises(AdminError, match="invalid server name"):
        certs.make_server_cert(ca, NOW, [name])


def test_admin_certificate_names_the_admin_role(ca: certs.Issued) -> None:
    cert = certs.make_admin_cert(ca, NOW).cert
    assert _uris(cert) == ["urn:vbios:role:admin"]
    assert _cn(cert) == "vbios-admin"
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    verified = _policy(ca).build_client_verifier().verify(cert, [])
    assert verified.chain[-1] == ca.cert
    principal = Principal.from_san_uris(_uris(cert), _cn(cert))
    assert principal.role is Role.ADMIN


def test_domain_certificate_names_its_domain(ca: certs.Issued) -> None:
    cert = certs.make_domain_cert(ca, "web-01", NOW, INCARNATION).cert
    assert _uris(cert) == ["urn:vbios:domain:web-01", f"urn:vbios:incarnation:{INCARNATION}"]
    assert _cn(cert) == "web-01"
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    _policy(ca).build_client_verifier().verify(cert, [])
    principal = Principal.from_san_uris(_uris(cert), _cn(cert), cert.serial_number)
    assert principal.role is Role.GUEST
    assert principal.own_domain() == "web-01"
    assert principal.incarnation == INCARNATION
    assert principal.serial == cert.serial_number


@pytest.mark.parametrize("domain_id", ["", "Upper", "../etc", "a/b", "-x", "x" * 64])
def test_domain_certificate_refuses_invalid_ids(ca: certs.Issued, domain_id: str) -> None:
    with pytest.raises(InvalidRequest):
        certs.make_domain_cert(ca, domain_id, NOW, INCARNATION)


def test_client_certificate_cannot_serve_and_server_certificate_cannot_be_a_client(
    ca: certs.Issued,
) -> None:
    server = certs.make_server_cert(ca, NOW).cert
    with pytest.raises(VerificationError):
        _policy(ca).build_client_verifier().verify(server, [])
    guest = certs.make_domain_cert(ca, "web1", NOW, INCARNATION).cert
    with pytest.raises(VerificationError):
        _policy(ca).build_server_verifier(x509.DNSName("localhost")).verify(guest, [])


def test_certificates_of_another_ca_do_not_verify(ca: certs.Issued) -> None:
    other = certs.make_ca(NOW)
    foreign = certs.make_admin_cert(other, NOW).cert
    with pytest.raises(VerificationError):
        _policy(ca).build_client_verifier().verify(foreign, [])
    with pytest.raises((ValueError, InvalidSignature)):
        foreign.verify_directly_issued_by(ca.cert)


def test_serials_are_random_and_positive(ca: certs.Issued) -> None:
    serials = {certs.make_domain_cert(ca, "web1", NOW, INCARNATION).cert.serial_number
               for _ in range(8)}
    assert len(serials) == 8
    assert all(s > 2**64 for s in serials)


def test_leaves_start_slightly_in_the_past_and_end_within_the_ca(ca: certs.Issued) -> None:
    late = ca.cert.not_valid_after_utc - timedelta(days=30)
    cert = certs.make_domain_cert(ca, "web1", late, INCARNATION).cert
    assert cert.not_valid_before_utc == late - certs.BACKDATE
    assert cert.not_valid_after_utc == ca.cert.not_valid_after_utc


def test_encrypted_key_pem_needs_its_passphrase(ca: certs.Issued) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    pem = certs.encrypted_key_pem(ca.key, b"correct horse")
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    with pytest.raises(TypeError):
        load_pem_private_key(pem, password=None)
    with pytest.raises(ValueError):
        load_pem_private_key(pem, password=b"wrong horse")
    loaded = load_pem_private_key(pem, password=b"correct horse")
    assert isinstance(loaded, ec.EllipticCurvePrivateKey)
    assert loaded.private_numbers() == ca.key.private_numbers()
    clear = certs.clear_key_pem(ca.key)
    assert clear.startswith(b"-----BEGIN PRIVATE KEY-----")
