"""Key material the interop tests hand to the stacks' client programs: a certificate to
add to a Secure Boot database, a bundle's identity as PKCS#12 for the stacks that read
that (Java, Mono), and a signed firmware capsule to upload."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from tests.firmware_support import Signers, capsule
from tests.interop.conftest import Guest

#: The FwVersion a domain's firmware starts at, and the capsule's (the update).
FIRST_FW_VERSION = 1
CAPSULE_FW_VERSION = 2
#: The capsule's MonotonicCount (xs:unsignedLong in FirmwareJob): above 2**63 - 1 (a
#: signed 64-bit integer's largest) and not a double, so a stack that reads it as
#: anything but an unsigned 64-bit integer (or its text) shows it.
MONOTONIC_COUNT = 2**63 + 4097
#: The size of the chunks the programs upload: a capsule of a 16 KiB firmware volume goes
#: in three, so every offset after the first comes from the server's NextOffset.
CHUNK_SIZE = 8192


@dataclass(frozen=True)
class DbCertificate:
    """A self-signed certificate written as PEM to ``path``."""

    path: Path
    der: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.der).hexdigest()


def db_certificate(path: Path, common_name: str) -> DbCertificate:
    """A new self-signed P-256 certificate (valid 30 days) for a Secure Boot database."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return DbCertificate(path, cert.public_bytes(serialization.Encoding.DER))


def write_pkcs12(bundle: Guest, path: Path, password: bytes, *, legacy: bool = False) -> Path:
    """The bundle's key and certificate as PKCS#12 in ``path``: AES-encrypted, or with
    ``legacy`` SHA-1 and 3DES (what Mono's btls can import)."""
    key = serialization.load_pem_private_key(bundle.key.read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate(bundle.cert.read_bytes())
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    encryption: serialization.KeySerializationEncryption
    if legacy:
        encryption = (serialization.PrivateFormat.PKCS12.encryption_builder()
                      .kdf_rounds(2048)
                      .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
                      .hmac_hash(hashes.SHA1())
                      .build(password))
    else:
        encryption = serialization.BestAvailableEncryption(password)
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"client", key, cert, None,
                                                           encryption))
    return path


@dataclass(frozen=True)
class FirmwareCapsule:
    """A signed capsule written to ``path``."""

    path: Path
    data: bytes
    monotonic_count: int

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def chunks(self) -> int:
        """How many chunks of CHUNK_SIZE bytes the capsule goes in."""
        return -(-self.size // CHUNK_SIZE)


def firmware_capsule(path: Path, signers: Signers) -> FirmwareCapsule:
    """A capsule of a bootable 16 KiB firmware volume, FwVersion CAPSULE_FW_VERSION,
    signed by ``signers``' capsule signer, written to ``path``."""
    data = capsule(signers, CAPSULE_FW_VERSION, count=MONOTONIC_COUNT)
    path.write_bytes(data)
    found = FirmwareCapsule(path, data, MONOTONIC_COUNT)
    assert found.chunks >= 2, f"a capsule of {found.size} bytes is sent in one chunk"
    return found
