"""Certificates of one installation: the CA, the server, and client certificates.

ECDSA P-256 keys, SHA-256 signatures, random serials, subject and authority
key identifiers. Pure functions of their arguments (time is a parameter); no
file is touched here.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bios_ws.domain.hosts import check_host_name
from bios_ws.domain.principal import (
    ADMIN_URI,
    GUEST_URI_PREFIX,
    HOST_URI_PREFIX,
    INCARNATION_URI_PREFIX,
    check_domain_id,
)
from bios_ws.errors import AdminError

CA_VALIDITY = timedelta(days=3653)
SERVER_VALIDITY = timedelta(days=730)
CLIENT_VALIDITY = timedelta(days=730)
#: Certificates start a little in the past so a peer whose clock is behind accepts them.
BACKDATE = timedelta(minutes=5)
ADMIN_COMMON_NAME = "vbios-admin"
SERVER_COMMON_NAME = "vbios-server"
DEFAULT_SERVER_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1")
_ORGANIZATION = "bios-ws vBIOS"
_DNS_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Issued:
    """A certificate and its private key, both in memory."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, _ORGANIZATION),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def make_ca(now: datetime, common_name: str | None = None) -> Issued:
    """A self-signed CA: CA:TRUE pathlen 0, keyCertSign and cRLSign only."""
    key = new_key()
    name = _name(common_name or f"vbios CA {secrets.token_hex(4)}")
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def parse_server_names(names: Sequence[str]) -> list[x509.GeneralName]:
    """DNS names and IP addresses for the server certificate's SAN."""
    general: list[x509.GeneralName] = []
    for raw in names:
        name = raw.strip()
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
            continue
        except ValueError:
            pass
        if len(name) > 253 or not all(_DNS_LABEL.match(lb) for lb in name.split(".")):
            raise AdminError(f"invalid server name {raw[:80]!r}: give a DNS name or an IP address")
        general.append(x509.DNSName(name.lower()))
    if not general:
        raise AdminError("the server certificate needs at least one name")
    return general


def leaf_builder(
    ca: Issued,
    subject: x509.Name,
    public: CertificatePublicKeyTypes,
    usage: x509.ObjectIdentifier,
    now: datetime,
    validity: timedelta,
) -> x509.CertificateBuilder:
    """A leaf certificate of ``ca`` for ``public``: digitalSignature, one extended usage,
    key identifiers, valid from a little before ``now`` and never past the CA."""
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(min(now + validity, ca.cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )


def _leaf(
    ca: Issued,
    subject: x509.Name,
    san: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
    now: datetime,
    validity: timedelta,
) -> Issued:
    key = new_key()
    cert = (
        leaf_builder(ca, subject, key.public_key(), usage, now, validity)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(cert, key)


def make_server_cert(
    ca: Issued, now: datetime, names: Sequence[str] = DEFAULT_SERVER_NAMES
) -> Issued:
    san = parse_server_names(names)
    return _leaf(ca, _name(SERVER_COMMON_NAME), san, ExtendedKeyUsageOID.SERVER_AUTH, now,
                 SERVER_VALIDITY)


def make_admin_cert(ca: Issued, now: datetime, validity: timedelta = CLIENT_VALIDITY
                    ) -> Issued:
    san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(ADMIN_URI)]
    return _leaf(ca, _name(ADMIN_COMMON_NAME), san, ExtendedKeyUsageOID.CLIENT_AUTH, now,
                 validity)


def make_host_cert(ca: Issued, host: str, now: datetime, validity: timedelta) -> Issued:
    """A host's certificate (another installation speaking for the domains granted to
    it): common name the host's name, SAN ``urn:vbios:host:<host>``."""
    check_host_name(host)
    san: list[x509.GeneralName] = [x509.UniformResourceIdentifier(f"{HOST_URI_PREFIX}{host}")]
    return _leaf(ca, _name(host), san, ExtendedKeyUsageOID.CLIENT_AUTH, now, validity)


def domain_san(domain_id: str, incarnation: str) -> list[x509.GeneralName]:
    """A guest certificate's names: its domain, and the incarnation of that domain."""
    check_domain_id(domain_id)
    return [x509.UniformResourceIdentifier(f"{GUEST_URI_PREFIX}{domain_id}"),
            x509.UniformResourceIdentifier(f"{INCARNATION_URI_PREFIX}{incarnation}")]


def make_domain_cert(ca: Issued, domain_id: str, now: datetime, incarnation: str,
                     validity: timedelta = CLIENT_VALIDITY) -> Issued:
    check_domain_id(domain_id)
    return _leaf(ca, _name(domain_id), domain_san(domain_id, incarnation),
                 ExtendedKeyUsageOID.CLIENT_AUTH, now, validity)


def certify_domain_key(ca: Issued, domain_id: str, incarnation: str,
                       public: CertificatePublicKeyTypes, now: datetime,
                       validity: timedelta) -> x509.Certificate:
    """A guest certificate for a key made elsewhere (the guest's own)."""
    check_domain_id(domain_id)
    return (leaf_builder(ca, _name(domain_id), public, ExtendedKeyUsageOID.CLIENT_AUTH, now,
                         validity)
            .add_extension(x509.SubjectAlternativeName(domain_san(domain_id, incarnation)),
                           critical=False)
            .sign(ca.key, hashes.SHA256()))


# -- PEM -------------------------------------------------------------------------


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def encrypted_key_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes) -> bytes:
    """PKCS#8 PEM encrypted with the best encryption the library offers."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase),
    )


def clear_key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """PKCS#8 PEM in clear: only for client bundles handed out."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
