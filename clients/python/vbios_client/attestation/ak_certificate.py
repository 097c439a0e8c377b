"""Decide whether an attestation key (AK) certificate is one the installation's CA vouches for.

A quote is only as good as the key that signed it: the guest accepts an AK
whose certificate was issued by the CA of its own bundle (``ca.pem``), is valid
now, is marked for attestation (ExtendedKeyUsage tcg-kp-AIKCertificate,
2.23.133.8.3, and KeyUsage digitalSignature), and holds an ECC P-256 key (the
only key the TPM's quote signature is checked with). Every problem found is
reported, not just the first.
"""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ObjectIdentifier

__all__ = [
    "MAX_CERTIFICATE_BYTES",
    "TCG_KP_AIK_CERTIFICATE",
    "ak_certificate_problems",
    "load_ak_certificate",
    "p256_public_key",
]

TCG_KP_AIK_CERTIFICATE = ObjectIdentifier("2.23.133.8.3")
MAX_CERTIFICATE_BYTES = 64 * 1024
MAX_CA_PEM_BYTES = 1024 * 1024


def load_ak_certificate(der: bytes) -> x509.Certificate:
    """The DER certificate, or ValueError saying why it cannot be read."""
    if not isinstance(der, bytes | bytearray | memoryview):
        raise ValueError(f"the AK certificate must be DER bytes, not {type(der).__name__}")
    if len(der) > MAX_CERTIFICATE_BYTES:
        raise ValueError(f"AK certificate of {len(der)} bytes exceeds {MAX_CERTIFICATE_BYTES}")
    return x509.load_der_x509_certificate(bytes(der))


def p256_public_key(certificate: x509.Certificate) -> ec.EllipticCurvePublicKey:
    """The certificate's key if it is ECC P-256, else ValueError naming what it is."""
    key = certificate.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError(f"the AK key is {type(key).__name__}, not ECC P-256")
    if not isinstance(key.curve, ec.SECP256R1):
        raise ValueError(f"the AK key is on curve {key.curve.name}, not P-256 (secp256r1)")
    return key


def ak_certificate_problems(certificate: x509.Certificate, ca_pem: bytes,
                            now: datetime) -> list[str]:
    """Everything wrong with ``certificate`` as an AK certificate of the CA in ``ca_pem``."""
    problems = _chain_problems(certificate, ca_pem, now)
    problems += _validity_problems("AK certificate", certificate, now)
    problems += _usage_problems(certificate)
    try:
        p256_public_key(certificate)
    except ValueError as error:
        problems.append(str(error))
    return problems


def _chain_problems(certificate: x509.Certificate, ca_pem: bytes, now: datetime) -> list[str]:
    if not isinstance(ca_pem, bytes | bytearray | memoryview) or len(ca_pem) > MAX_CA_PEM_BYTES:
        return [f"the CA certificate must be PEM bytes of at most {MAX_CA_PEM_BYTES} bytes"]
    try:
        authorities = x509.load_pem_x509_certificates(bytes(ca_pem))
    except ValueError as error:
        return [f"the CA certificate is unreadable: {error}"]
    issuers = [ca for ca in authorities if ca.subject == certificate.issuer]
    if not issuers:
        return [f"issued by '{certificate.issuer.rfc4514_string()}', not by the installation's"
                f" CA '{authorities[0].subject.rfc4514_string()}'"]
    last: list[str] = []
    for issuer in issuers:
        problems = _issuer_problems(issuer, certificate, now)
        if not problems:
            return []
        last = problems
    return last


def _issuer_problems(issuer: x509.Certificate, certificate: x509.Certificate,
                     now: datetime) -> list[str]:
    problems = _validity_problems("CA certificate", issuer, now)
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
        if not constraints.ca:
            problems.append("the CA certificate is not a CA (BasicConstraints cA is false)")
    except x509.ExtensionNotFound:
        problems.append("the CA certificate has no BasicConstraints: not a CA")
    try:
        certificate.verify_directly_issued_by(issuer)
    except InvalidSignature:
        problems.append("the CA's signature on the AK certificate does not verify")
    except (ValueError, TypeError) as error:
        problems.append(f"the CA's signature on the AK certificate cannot be checked: {error}")
    return problems


def _validity_problems(what: str, certificate: x509.Certificate, now: datetime) -> list[str]:
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    if now < start:
        return [f"the {what} is not valid before {start.isoformat()}"]
    if now > end:
        return [f"the {what} expired at {end.isoformat()}"]
    return []


def _usage_problems(certificate: x509.Certificate) -> list[str]:
    problems: list[str] = []
    try:
        usages = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        if TCG_KP_AIK_CERTIFICATE not in usages:
            problems.append("ExtendedKeyUsage lacks tcg-kp-AIKCertificate (2.23.133.8.3)")
    except x509.ExtensionNotFound:
        problems.append("no ExtendedKeyUsage: tcg-kp-AIKCertificate (2.23.133.8.3) required")
    try:
        key_usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
        if not key_usage.digital_signature:
            problems.append("KeyUsage lacks digitalSignature")
    except x509.ExtensionNotFound:
        problems.append("no KeyUsage: digitalSignature required")
    return problems
