"""The endorsement key certificate: does it chain to a trusted TPM vendor CA and certify this EK?

EK certificates are not web-PKI certificates (empty subject, a critical SAN
holding a directoryName with the TPM's manufacturer and model, the TCG EKU), so
no TLS path builder is used: the chain is walked by issuer name with
``verify_directly_issued_by``. Every issuer must be a CA certificate valid now,
and the walk must end at a self-signed certificate among the anchors. Anchors
are PEM certificates (roots and intermediates) the admin trusts: the TPM
vendor's, or the development TPM's local CA (``<tpm dir>/localca/*.pem``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from bios_ws.errors import TpmError

MAX_CERT_BYTES = 16 * 1024
MAX_ANCHOR_BYTES = 256 * 1024
_MAX_DEPTH = 8


def _spki(public_key: PublicKeyTypes) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_anchors(anchors_pem: Sequence[bytes]) -> list[x509.Certificate]:
    """Every certificate in ``anchors_pem`` (each item may hold several); TpmError if damaged."""
    certificates: list[x509.Certificate] = []
    for number, pem in enumerate(anchors_pem, start=1):
        if not isinstance(pem, bytes) or len(pem) > MAX_ANCHOR_BYTES:
            raise TpmError(f"EK trust anchor {number} is not PEM bytes of at most"
                           f" {MAX_ANCHOR_BYTES}")
        try:
            certificates += x509.load_pem_x509_certificates(pem)
        except ValueError:
            raise TpmError(f"EK trust anchor {number} holds no readable PEM certificate") from None
    if not certificates:
        raise TpmError("no EK trust anchor given: the TPM vendor's CA certificate is needed")
    return certificates


def _valid_now(cert: x509.Certificate, now: datetime, what: str) -> None:
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise TpmError(f"{what} ({cert.subject.rfc4514_string() or 'no subject'})"
                       " is not valid now")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    if not constraints.ca:
        return False
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage.key_cert_sign


def _issued_by(child: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _issuer_of(child: x509.Certificate, candidates: Sequence[x509.Certificate],
               now: datetime) -> x509.Certificate | None:
    """The candidate that signed ``child``: named as its issuer, a CA, valid now."""
    for candidate in candidates:
        if candidate.subject != child.issuer or not _is_ca(candidate):
            continue
        if not candidate.not_valid_before_utc <= now <= candidate.not_valid_after_utc:
            continue
        if _issued_by(child, candidate):
            return candidate
    return None


def verify_ek_certificate(cert_der: bytes, anchors_pem: Sequence[bytes],
                          ek_public_pem: bytes, now: datetime | None = None) -> None:
    """Refuse (TpmError saying why) unless ``cert_der`` chains to a self-signed anchor
    and certifies exactly ``ek_public_pem``."""
    now = now or datetime.now(UTC)
    if not isinstance(cert_der, bytes) or not 0 < len(cert_der) <= MAX_CERT_BYTES:
        raise TpmError(f"the EK certificate must be 1 to {MAX_CERT_BYTES} bytes of DER")
    try:
        cert = x509.load_der_x509_certificate(cert_der)
    except ValueError:
        raise TpmError("the EK certificate in the TPM's NV is not a readable X.509"
                       " certificate") from None
    try:
        ek_public = serialization.load_pem_public_key(ek_public_pem)
    except (ValueError, TypeError):
        raise TpmError("the endorsement key's public key is not readable PEM") from None
    try:
        certified = _spki(cert.public_key())
    except (ValueError, TypeError):
        raise TpmError("the EK certificate holds a public key of an unsupported kind") from None
    if certified != _spki(ek_public):
        raise TpmError("the EK certificate does not certify this TPM's endorsement key")
    _valid_now(cert, now, "the EK certificate")
    anchors = load_anchors(anchors_pem)
    current = cert
    for _ in range(_MAX_DEPTH):
        issuer = _issuer_of(current, anchors, now)
        if issuer is None:
            raise TpmError(
                "the EK certificate does not chain to a trusted EK CA: no valid CA"
                f" certificate among the anchors issued {current.subject.rfc4514_string()!r}"
                f" (issuer {current.issuer.rfc4514_string()!r})")
        if issuer.subject == issuer.issuer and _issued_by(issuer, issuer):
            return
        current = issuer
    raise TpmError("the EK certificate chain is too long or loops without a self-signed root")


def dev_ek_anchors(tpm_dir: Path) -> list[bytes]:
    """The development TPM's local CA certificates: ``<tpm_dir>/localca/*.pem`` (sorted)."""
    anchors: list[bytes] = []
    for path in sorted((Path(tpm_dir) / "localca").glob("*.pem")):
        if path.is_symlink() or not path.is_file():
            continue
        try:
            with path.open("rb") as handle:
                data = handle.read(MAX_ANCHOR_BYTES + 1)
        except OSError:
            continue
        if len(data) <= MAX_ANCHOR_BYTES and b"-----BEGIN CERTIFICATE-----" in data:
            anchors.append(data)
    return anchors
