"""The attestation key certificate: the installation CA vouches for the TPM-resident AK.

Issued after enrollment proved (by credential activation against a verified EK)
that the AK lives in this host's TPM. Its only extended key usage is
tcg-kp-AIKCertificate (2.23.133.8.3) and its only key usage digitalSignature. It
carries NO SubjectAlternativeName: the TLS identity layer turns ``urn:vbios:*``
SAN URIs into principals, and an AK certificate must never name one (the AK key
cannot even do TLS: it is a restricted key that signs only TPM-made data). The
AK's TPM name is in a private, non-critical extension (OID under the UUID arc
2.25, X.667) as an OCTET STRING, so a verifier can match quotes' signer to it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bios_ws.errors import AdminError
from bios_ws.pki import certs
from bios_ws.pki.authority import Authority
from bios_ws.tpm.attest_format import check_ak_name

#: tcg-kp-AIKCertificate (TCG EK Credential Profile).
TCG_KP_AIK_CERTIFICATE = x509.ObjectIdentifier("2.23.133.8.3")
#: bios-ws private extension holding the AK's TPM name (UUID 2c2a2294-0334-455f-84c9-c2e56412c470).
AK_NAME_OID = x509.ObjectIdentifier("2.25.58704809611280984213462563654204572784")
AK_COMMON_NAME_PREFIX = "vbios attestation key "
AK_VALIDITY = certs.CLIENT_VALIDITY
_MAX_CN = 64
_MAX_PEM = 16 * 1024


def check_host_label(host_label: str) -> str:
    """A label that fits the subject CN: printable, no surrounding space, 1..42 characters."""
    limit = _MAX_CN - len(AK_COMMON_NAME_PREFIX)
    if (not isinstance(host_label, str) or not 0 < len(host_label) <= limit
            or not host_label.isprintable() or host_label.strip() != host_label):
        raise AdminError(f"invalid host label {str(host_label)[:80]!r}: 1 to {limit} printable"
                         " characters without surrounding spaces")
    return host_label


def _ak_public(ak_public_pem: bytes) -> ec.EllipticCurvePublicKey:
    if not isinstance(ak_public_pem, bytes) or len(ak_public_pem) > _MAX_PEM:
        raise AdminError("the attestation key must be a PEM public key")
    try:
        key = serialization.load_pem_public_key(ak_public_pem)
    except (ValueError, TypeError):
        raise AdminError("the attestation key is not a readable PEM public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise AdminError("the attestation key is not an ECC P-256 key")
    return key


def _octet_string(data: bytes) -> bytes:
    """DER OCTET STRING of up to 127 bytes (an AK name is 34)."""
    return bytes([0x04, len(data)]) + data


def issue_ak_certificate(authority: Authority, ak_public_pem: bytes, ak_name: bytes,
                         host_label: str, now: datetime | None = None) -> bytes:
    """PEM certificate for the AK, signed by the installation CA (see the module docstring)."""
    key = _ak_public(ak_public_pem)
    try:
        name = check_ak_name(ak_name)
    except ValueError as exc:
        raise AdminError(str(exc)) from None
    label = check_host_label(host_label)
    now = now or datetime.now(UTC)
    subject = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "bios-ws vBIOS"),
        x509.NameAttribute(NameOID.COMMON_NAME, AK_COMMON_NAME_PREFIX + label),
    ])
    cert = authority.certify_public_key(
        subject, key, TCG_KP_AIK_CERTIFICATE, AK_VALIDITY,
        [x509.UnrecognizedExtension(AK_NAME_OID, _octet_string(name))], now)
    return certs.cert_pem(cert)


def ak_name_of(cert: x509.Certificate) -> bytes | None:
    """The AK name an AK certificate carries, or None if it carries none (or a damaged one)."""
    try:
        value = cert.extensions.get_extension_for_oid(AK_NAME_OID).value
    except x509.ExtensionNotFound:
        return None
    if not isinstance(value, x509.UnrecognizedExtension):
        return None
    der = value.value
    if len(der) < 2 or der[0] != 0x04 or der[1] != len(der) - 2:
        return None
    try:
        return check_ak_name(der[2:])
    except ValueError:
        return None


