"""Certificate requests (PKCS#10) a guest sends to enroll or renew: checked strictly.

The guest makes its key and never sends it; the request proves it holds the
key (its signature) and may only ask to be its own domain. Nothing the request
asks for is copied into the certificate: the CA writes the subject, the names
and every extension itself.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from bios_ws.domain.principal import GUEST_URI_PREFIX
from bios_ws.errors import InvalidRequest

MAX_REQUEST_BYTES = 16 * 1024
STRONG_CURVES = (ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
MIN_RSA_BITS = 2048


def checked_request(der: bytes, domain_id: str) -> CertificatePublicKeyTypes:
    """The public key of a request by ``domain_id``; InvalidRequest naming what is wrong."""
    if not der or len(der) > MAX_REQUEST_BYTES:
        raise InvalidRequest(f"the certificate request must be 1 to {MAX_REQUEST_BYTES}"
                             " bytes of DER")
    try:
        request = x509.load_der_x509_csr(der)
        public = request.public_key()
    except (ValueError, TypeError):
        raise InvalidRequest("the certificate request is not a PKCS#10 request in DER")\
            from None
    if not request.is_signature_valid:
        raise InvalidRequest("the certificate request's signature does not verify: it must"
                             " be signed with the key it certifies")
    _check_key(public)
    _check_identity(request, domain_id)
    return public


def _check_key(public: object) -> None:
    if isinstance(public, ec.EllipticCurvePublicKey):
        if not isinstance(public.curve, STRONG_CURVES):
            raise InvalidRequest(f"the request's key is on curve {public.curve.name}: use"
                                 " P-256, P-384 or P-521")
        return
    if isinstance(public, rsa.RSAPublicKey):
        if public.key_size < MIN_RSA_BITS:
            raise InvalidRequest(f"the request's RSA key has {public.key_size} bits: use"
                                 f" {MIN_RSA_BITS} or more, or an EC key")
        return
    raise InvalidRequest("the request's key must be an EC (P-256, P-384, P-521) or RSA key")


def _check_identity(request: x509.CertificateSigningRequest, domain_id: str) -> None:
    for attribute in request.subject:
        if attribute.oid == NameOID.COMMON_NAME and attribute.value != domain_id:
            raise InvalidRequest(f"the request asks for the name {str(attribute.value)[:64]!r}"
                                 f"; a guest may only ask to be {domain_id!r}")
    try:
        san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    except ValueError:
        raise InvalidRequest("the request's extensions cannot be parsed") from None
    if san is not None:
        allowed = {f"{GUEST_URI_PREFIX}{domain_id}"}
        asked = [str(name.value) for name in san]
        others = [name for name in asked if name not in allowed]
        if others:
            raise InvalidRequest(f"the request asks for the names {others[:3]}; a guest may"
                                 f" only ask to be {GUEST_URI_PREFIX}{domain_id}")
    try:
        constraints = request.extensions.get_extension_for_class(x509.BasicConstraints)
    except x509.ExtensionNotFound:
        return
    if constraints.value.ca:
        raise InvalidRequest("the request asks for a CA certificate")
