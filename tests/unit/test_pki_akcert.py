"""The attestation key certificate: contents, chain to the CA, and no principal behind it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bios_ws.domain.principal import Principal
from bios_ws.errors import AccessDenied, AdminError
from bios_ws.pki import certs
from bios_ws.pki.akcert import (
    AK_NAME_OID,
    TCG_KP_AIK_CERTIFICATE,
    ak_name_of,
    issue_ak_certificate,
)
from bios_ws.pki.authority import Authority
from bios_ws.server.identity import identity_of
from bios_ws.tpm.attest_format import marshal_ak_public, object_name

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def ca() -> certs.Issued:
    return certs.make_ca(NOW)


@pytest.fixture(scope="module")
def ak() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


def name_of(key: ec.EllipticCurvePrivateKey) -> bytes:
    numbers = key.public_key().public_numbers()
    return object_name(marshal_ak_public(numbers.x.to_bytes(32, "big"),
                                         numbers.y.to_bytes(32, "big")))


@pytest.fixture(scope="module")
def issued(ca: certs.Issued, ak: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    pem = issue_ak_certificate(Authority(ca), public_pem(ak), name_of(ak), "host-1", NOW)
    return x509.load_pem_x509_certificate(pem)


def test_certifies_the_ak_and_chains_to_the_ca(
    issued: x509.Certificate, ca: certs.Issued, ak: ec.EllipticCurvePrivateKey
) -> None:
    issued.verify_directly_issued_by(ca.cert)
    assert issued.public_key().public_numbers() == ak.public_key().public_numbers()
    assert issued.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == (
        "vbios attestation key host-1")
    assert issued.not_valid_before_utc == NOW - certs.BACKDATE
    assert issued.not_valid_after_utc <= ca.cert.not_valid_after_utc


def test_usages_are_the_aik_eku_and_digital_signature_only(issued: x509.Certificate) -> None:
    eku = issued.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [TCG_KP_AIK_CERTIFICATE]
    assert ExtendedKeyUsageOID.CLIENT_AUTH not in eku
    usage = issued.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature
    assert not (usage.value.key_cert_sign or usage.value.key_agreement
                or usage.value.key_encipherment or usage.value.content_commitment)
    constraints = issued.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and not constraints.value.ca


def test_carries_the_ak_name_and_no_san(issued: x509.Certificate,
                                        ak: ec.EllipticCurvePrivateKey) -> None:
    assert ak_name_of(issued) == name_of(ak)
    assert not issued.extensions.get_extension_for_oid(AK_NAME_OID).critical
    with pytest.raises(x509.ExtensionNotFound):
        issued.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_no_principal_maps_from_an_ak_certificate(issued: x509.Certificate) -> None:
    """Presented as a TLS client certificate, an AK certificate names nobody."""
    refused = identity_of(issued.public_bytes(Encoding.DER))
    assert isinstance(refused, str), refused
    with pytest.raises(AccessDenied):
        Principal.from_san_uris([], "vbios attestation key host-1")


def test_ak_name_of_other_certificates_is_none(ca: certs.Issued) -> None:
    assert ak_name_of(ca.cert) is None
    assert ak_name_of(certs.make_admin_cert(ca, NOW).cert) is None


def test_bad_input_is_refused(ca: certs.Issued, ak: ec.EllipticCurvePrivateKey) -> None:
    authority, pem, name = Authority(ca), public_pem(ak), name_of(ak)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p384 = ec.generate_private_key(ec.SECP384R1())
    for bad_pem, match in ((public_pem(rsa_key), "P-256"), (public_pem(p384), "P-256"),
                           (b"junk", "readable PEM"), (b"x" * 20000, "PEM public key")):
        with pytest.raises(AdminError, match=match):
            issue_ak_certificate(authority, bad_pem, name, "host", NOW)
    for bad_name in (name[:-1], b"\x00\x04" + name[2:]):
        with pytest.raises(AdminError, match="AK name"):
            issue_ak_certificate(authority, pem, bad_name, "host", NOW)
    for label in ("", "x" * 43, "bad\nlabel", " padded"):
        with pytest.raises(AdminError, match="host label"):
            issue_ak_certificate(authority, pem, name, label, NOW)
    assert issue_ak_certificate(authority, pem, name, "x" * 42, NOW + timedelta(days=1))
