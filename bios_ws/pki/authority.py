"""The installation's certificate authority on disk: creating it, loading it, issuing.

The CA and server keys (and the transfer key of encrypted capsule delivery, under the
server key's passphrase) are stored as encrypted PKCS#8 PEM. With a TPM each has
its own random passphrase (32 random bytes, urlsafe base64), sealed in the TPM
by ``bios_ws.launch.sealing``; no passphrase file exists. Without a TPM
(`vbios init --no-tpm`, development only) one passphrase protects both and
lives in ``<home>/secrets/key-passphrase`` (mode 0600). Client bundles
(cert.pem, key.pem, ca.pem) are the only place a private key is written in
clear, mode 0600.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from bios_ws.errors import AdminError, KeyUnreadable
from bios_ws.home import Home
from bios_ws.pki import certs, crl
from bios_ws.pki.files import (
    PRIVATE_MODE,
    PUBLIC_MODE,
    ensure_dir,
    write_file_atomic,
)
from bios_ws.pki.files import (
    find_clear_private_keys as _find_clear,
)

BUNDLE_FILES = ("cert.pem", "key.pem", "ca.pem")


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Authority:
    """The CA of one installation, loaded in memory with its key."""

    def __init__(self, ca: certs.Issued) -> None:
        self._ca = ca

    @property
    def cert(self) -> x509.Certificate:
        return self._ca.cert

    @classmethod
    def load(cls, home: Home, passphrase: bytes | None = None) -> Authority:
        """Read the CA certificate and decrypt its key; KeyUnreadable on any failure.

        Without ``passphrase`` the home provides it (unsealed through the TPM, or
        the 0600 file of a home without TPM).
        """
        if passphrase is None:
            passphrase = home.key_passphrase("ca")
        cert = load_certificate(home.ca_cert)
        key = load_private_key(home.ca_key, passphrase)
        if key.public_key().public_numbers() != _ec_public(cert).public_numbers():
            raise KeyUnreadable(f"CA key {home.ca_key} does not match {home.ca_cert}")
        return cls(certs.Issued(cert, key))

    @property
    def issued(self) -> certs.Issued:
        """The CA certificate with its key."""
        return self._ca

    def issue_domain(self, domain_id: str, incarnation: str, now: datetime | None = None,
                     validity: timedelta = certs.CLIENT_VALIDITY) -> certs.Issued:
        return certs.make_domain_cert(self._ca, domain_id, now or _utc_now(), incarnation,
                                      validity)

    def issue_admin(self, now: datetime | None = None,
                    validity: timedelta = certs.CLIENT_VALIDITY) -> certs.Issued:
        return certs.make_admin_cert(self._ca, now or _utc_now(), validity)

    def issue_host(self, host: str, now: datetime, validity: timedelta) -> certs.Issued:
        return certs.make_host_cert(self._ca, host, now, validity)

    def certify_guest_key(self, domain_id: str, incarnation: str,
                          public: CertificatePublicKeyTypes, now: datetime,
                          validity: timedelta) -> x509.Certificate:
        """A guest certificate for a key the guest made (its request was checked)."""
        return certs.certify_domain_key(self._ca, domain_id, incarnation, public, now, validity)

    def derived_secret(self, label: bytes) -> bytes:
        """A secret derived from the CA key (HMAC-SHA256 keyed by its private scalar):
        only a holder of the CA key can compute it."""
        scalar = self._ca.key.private_numbers().private_value.to_bytes(32, "big")
        return hmac.new(scalar, label, hashlib.sha256).digest()

    def certify_public_key(
        self,
        subject: x509.Name,
        public: CertificatePublicKeyTypes,
        usage: x509.ObjectIdentifier,
        validity: timedelta,
        extra: Sequence[x509.ExtensionType] = (),
        now: datetime | None = None,
    ) -> x509.Certificate:
        """A leaf certificate for a key made elsewhere (the TPM's attestation key);
        ``extra`` extensions are added as non-critical."""
        builder = certs.leaf_builder(self._ca, subject, public, usage, now or _utc_now(),
                                     validity)
        for extension in extra:
            builder = builder.add_extension(extension, critical=False)
        return builder.sign(self._ca.key, hashes.SHA256())

    def issue_server(
        self, names: Sequence[str] = certs.DEFAULT_SERVER_NAMES, now: datetime | None = None
    ) -> certs.Issued:
        return certs.make_server_cert(self._ca, now or _utc_now(), names)


def _ec_public(cert: x509.Certificate) -> ec.EllipticCurvePublicKey:
    public = cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise KeyUnreadable("the CA certificate does not hold an EC key")
    return public


def load_certificate(path: Path) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except OSError as exc:
        raise KeyUnreadable(f"cannot read certificate {path}: {exc.strerror or exc}") from None
    except ValueError:
        raise KeyUnreadable(f"certificate {path} is damaged") from None


def load_private_key(path: Path, passphrase: bytes) -> ec.EllipticCurvePrivateKey:
    """Decrypt an encrypted PKCS#8 PEM key; KeyUnreadable with the path on any failure."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyUnreadable(f"cannot read key {path}: {exc.strerror or exc}") from None
    try:
        key = load_pem_private_key(data, password=passphrase)
    except (ValueError, TypeError):
        raise KeyUnreadable(
            f"cannot decrypt key {path}: wrong passphrase or damaged file"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise KeyUnreadable(f"key {path} is not an EC key")
    return key


def create_passphrase(home: Home) -> bytes:
    """Make and store a fresh random key passphrase (0600 in a 0700 directory)."""
    passphrase = base64.urlsafe_b64encode(os.urandom(32))
    ensure_dir(home.secrets_dir)
    write_file_atomic(home.passphrase_file, passphrase + b"\n", PRIVATE_MODE)
    return passphrase


def initialize_pki(
    home: Home,
    server_names: Sequence[str] = certs.DEFAULT_SERVER_NAMES,
    now: datetime | None = None,
    *,
    passphrases: tuple[bytes, bytes] | None = None,
) -> x509.Certificate:
    """Create the CA, the server certificate, the transfer key, the admin bundle and an
    empty CRL of a new home; the admin certificate (for the caller to record).

    ``passphrases`` is (server, CA), to be sealed by the caller; without it one
    fresh passphrase protects both keys and is written to the 0600 passphrase
    file (a home without TPM). The CA certificate is written last: its presence
    means the PKI is complete.
    """
    if home.ca_cert.exists():
        raise AdminError(f"{home.path} is already initialized")
    now = now or _utc_now()
    certs.parse_server_names(server_names)  # refuse a bad name before writing anything
    if passphrases is None:
        shared = create_passphrase(home)
        server_passphrase, ca_passphrase = shared, shared
    else:
        server_passphrase, ca_passphrase = passphrases
    ca = certs.make_ca(now)
    server = certs.make_server_cert(ca, now, server_names)
    admin = certs.make_admin_cert(ca, now)
    ensure_dir(home.pki_dir)
    write_file_atomic(home.ca_key, certs.encrypted_key_pem(ca.key, ca_passphrase), PRIVATE_MODE)
    write_file_atomic(home.server_key, certs.encrypted_key_pem(server.key, server_passphrase),
                      PRIVATE_MODE)
    # Imported here: bios_ws.firmware.transfer builds on this module. A transfer key left
    # by an interrupted init is under a passphrase that no longer exists: replaced.
    from bios_ws.firmware.transfer import create_transfer_key

    create_transfer_key(home.transfer_key, server_passphrase, replace=True)
    write_file_atomic(home.server_cert, certs.cert_pem(server.cert), PUBLIC_MODE)
    write_client_bundle(home.admin_dir, admin, ca.cert, require_empty=False)
    crl.CrlFile(home.crl_file, ca.cert).write(crl.build_crl(ca, [], now))
    write_file_atomic(home.ca_cert, certs.cert_pem(ca.cert), PUBLIC_MODE)
    return admin.cert


def check_bundle_dir(out_dir: Path) -> None:
    """Refuse a bundle directory that exists and is not empty (or is not a directory)."""
    if out_dir.exists() or out_dir.is_symlink():
        if not out_dir.is_dir():
            raise AdminError(f"bundle directory {out_dir} exists and is not a directory")
        if any(out_dir.iterdir()):
            raise AdminError(f"bundle directory {out_dir} is not empty; choose another --out")


def write_client_bundle(
    out_dir: Path, issued: certs.Issued, ca_cert: x509.Certificate, *, require_empty: bool = True
) -> None:
    """cert.pem, key.pem (clear PKCS#8, 0600) and ca.pem in ``out_dir`` (0700)."""
    write_bundle_files(out_dir, certs.cert_pem(issued.cert), certs.clear_key_pem(issued.key),
                       certs.cert_pem(ca_cert), require_empty=require_empty)


def write_bundle_files(out_dir: Path, cert_pem: bytes, key_pem: bytes, ca_pem: bytes, *,
                       require_empty: bool = True) -> None:
    """cert.pem, key.pem (0600) and ca.pem in ``out_dir`` (0700)."""
    if require_empty:
        check_bundle_dir(out_dir)
    ensure_dir(out_dir)
    write_file_atomic(out_dir / "key.pem", key_pem, PRIVATE_MODE)
    write_file_atomic(out_dir / "cert.pem", cert_pem, PUBLIC_MODE)
    write_file_atomic(out_dir / "ca.pem", ca_pem, PUBLIC_MODE)


def find_clear_private_keys(home: Home, *, include_handed_out: bool = False) -> list[Path]:
    """Files of ``home`` holding a private key in clear, outside admin/ and bundles/
    (or anywhere, with ``include_handed_out``)."""
    excluded = () if include_handed_out else (home.admin_dir, home.bundles_dir)
    return _find_clear(home.path, excluded=excluded)
