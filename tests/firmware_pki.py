"""Test certificates for capsule signers: a root CA, an intermediate, code-signing leaves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bios_ws.firmware.signing import CapsuleSigningKey, SigningKey

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Issued:
    certificate: x509.Certificate
    key: SigningKey

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())

    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def issue(common_name: str, issuer: Issued | None, *, ca: bool, rsa_key: bool = False,
          not_before: datetime = NOW - timedelta(days=30),
          not_after: datetime = NOW + timedelta(days=365),
          usage: x509.ObjectIdentifier | None = ExtendedKeyUsageOID.CODE_SIGNING) -> Issued:
    key: SigningKey = (rsa.generate_private_key(65537, 2048) if rsa_key
                       else ec.generate_private_key(ec.SECP256R1()))
    signing_key = key if issuer is None else issuer.key
    issuer_name = _name(common_name) if issuer is None else issuer.certificate.subject
    issuer_public = key.public_key() if issuer is None else issuer.key.public_key()
    builder = (x509.CertificateBuilder().subject_name(_name(common_name))
               .issuer_name(issuer_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                              critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                   issuer_public), critical=False))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=False, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        if usage is not None:
            builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return Issued(builder.sign(signing_key, hashes.SHA256()), key)


@dataclass(frozen=True)
class SignerPki:
    root: Issued
    intermediate: Issued
    leaf: Issued            # issued by the root
    chained_leaf: Issued    # issued by the intermediate

    def signing_key(self) -> CapsuleSigningKey:
        return CapsuleSigningKey(self.leaf.certificate, self.leaf.key)

    def chained_signing_key(self) -> CapsuleSigningKey:
        return CapsuleSigningKey(self.chained_leaf.certificate, self.chained_leaf.key,
                                 (self.intermediate.certificate,))


def make_pki(name: str = "Test") -> SignerPki:
    root = issue(f"{name} Firmware Root", None, ca=True)
    intermediate = issue(f"{name} Firmware Intermediate", root, ca=True)
    return SignerPki(root, intermediate, issue(f"{name} Capsule Signer", root, ca=False),
                     issue(f"{name} Chained Capsule Signer", intermediate, ca=False))


def write_pem(path: Path, *parts: bytes) -> Path:
    path.write_bytes(b"".join(parts))
    return path
