"""Signing a capsule's content as edk2 does: detached PKCS#7, SHA-256, no signed attributes.

The result is what ``openssl smime -sign -binary -noattr -outform DER -md sha256`` writes, and
what ``openssl smime -verify -binary -inform DER -content FILE -CAfile ROOT`` accepts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7

from bios_ws.errors import AdminError

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_OPTIONS = [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary,
            pkcs7.PKCS7Options.NoAttributes]


@dataclass(frozen=True)
class CapsuleSigningKey:
    """A signer: its certificate, its private key, and the intermediates to embed."""

    certificate: x509.Certificate
    key: SigningKey
    intermediates: tuple[x509.Certificate, ...] = ()

    def sign(self, content: bytes) -> bytes:
        """A ``Signer`` for ``bios_ws.domain.capsule_build.build_capsule``."""
        return sign_detached(content, self.certificate, self.key, self.intermediates)


def sign_detached(content: bytes, certificate: x509.Certificate, key: SigningKey,
                  intermediates: Sequence[x509.Certificate] = ()) -> bytes:
    """DER PKCS#7 SignedData over ``content`` (not embedded), signer and intermediates inside."""
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(
        certificate, key, hashes.SHA256())
    for extra in intermediates:
        builder = builder.add_certificate(extra)
    return builder.sign(serialization.Encoding.DER, _OPTIONS)


def load_signing_key(cert_pem: bytes, key_pem: bytes, *, cert_name: str = "signer certificate",
                     key_name: str = "signer key") -> CapsuleSigningKey:
    """The signer in PEM files: the first certificate signs, the others are embedded as
    intermediates; the key (RSA or EC, unencrypted) must match the first certificate."""
    try:
        certificates = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        raise AdminError(f"{cert_name} holds no PEM certificate") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except TypeError:
        raise AdminError(f"{key_name} is encrypted; give an unencrypted PEM key") from None
    except (ValueError, AssertionError):
        raise AdminError(f"{key_name} holds no PEM private key") from None
    except Exception as exc:  # cryptography raises UnsupportedAlgorithm for exotic keys
        raise AdminError(f"{key_name} cannot be read: {type(exc).__name__}") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise AdminError(f"{key_name} is neither an RSA nor an EC key")
    signer = certificates[0]
    public = signer.public_key()
    if public.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo) != \
            key.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo):
        raise AdminError(f"{key_name} does not belong to the first certificate of {cert_name}")
    return CapsuleSigningKey(signer, key, tuple(certificates[1:]))
