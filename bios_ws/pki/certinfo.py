"""Certificates as a Secure Boot database shows them, and PEM checked at the boundary."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bios_ws.errors import InvalidRequest

#: Largest PEM text accepted for one certificate.
MAX_PEM_CHARS = 16 * 1024


@dataclass(frozen=True)
class CertificateInfo:
    subject: str
    issuer: str
    not_after: datetime
    #: SHA-256 of the DER, lower-case hex.
    sha256: str


def describe(der: bytes) -> CertificateInfo:
    """Subject, issuer, expiry and fingerprint of a DER certificate (an unreadable one shows
    only its fingerprint)."""
    fingerprint = hashlib.sha256(der).hexdigest()
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError:
        return CertificateInfo("(unreadable certificate)", "", datetime.min, fingerprint)
    return CertificateInfo(cert.subject.rfc4514_string(), cert.issuer.rfc4514_string(),
                           cert.not_valid_after_utc, fingerprint)


def pem_certificate_der(text: str) -> bytes:
    """The DER of the one X.509 certificate in PEM ``text``; InvalidRequest otherwise."""
    if not isinstance(text, str) or len(text) > MAX_PEM_CHARS:
        raise InvalidRequest(f"a certificate is PEM text of at most {MAX_PEM_CHARS} characters")
    try:
        certs = x509.load_pem_x509_certificates(text.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise InvalidRequest("the certificate is not a PEM X.509 certificate") from None
    if len(certs) != 1:
        raise InvalidRequest("give exactly one certificate")
    return certs[0].public_bytes(Encoding.DER)
