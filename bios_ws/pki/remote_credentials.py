"""This host's credential at a remote vBIOS: read from the bundle the remote's admin
issued (``vbios host add H --domains ... --out BUNDLE`` there), kept, and used.

The bundle holds ``cert.pem`` (SAN ``urn:vbios:host:<this host>``, a client leaf),
``key.pem`` (in clear, as every client bundle) and ``ca.pem`` (the remote's CA, which
this host pins for the remote's server certificate). ``vbios remote add`` checks that
the three fit, records the certificates in the store (``domain.routing.Remote``) and
keeps the key in the home as ``pki/remotes/<name>-key.pem``, encrypted under the server
key's passphrase as the transfer key is (PKCS#8, 0600): the passphrase is sealed in
the TPM, so no private key lies in clear on disk, and a stolen disk gives none. The
key stays in the home, not in the store: a fleet's store is shared, the credential is
this host's alone. The serving process builds the TLS client context from them
(``client_context``), unsealing the passphrase as it does for its server key.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from bios_ws.errors import AdminError, KeyUnreadable
from bios_ws.pki.authority import load_private_key
from bios_ws.pki.certs import cert_pem, encrypted_key_pem
from bios_ws.pki.files import PRIVATE_MODE, ensure_dir, write_file_atomic

HOST_URI_PREFIX = "urn:vbios:host:"
BUNDLE_FILES = ("cert.pem", "key.pem", "ca.pem")


@dataclass(frozen=True)
class Bundle:
    """A host credential bundle, checked: the certificate fits the key and the CA."""

    cert_pem: bytes
    ca_pem: bytes
    key: ec.EllipticCurvePrivateKey
    host: str  # the host the certificate names


def read_bundle(directory: Path) -> Bundle:
    """Read and check a host bundle; AdminError saying what does not fit."""
    data: dict[str, bytes] = {}
    for name in BUNDLE_FILES:
        try:
            data[name] = (directory / name).read_bytes()
        except OSError as exc:
            raise AdminError(f"cannot read {directory / name}: {exc.strerror or exc}"
                             " (a host bundle holds cert.pem, key.pem and ca.pem)") from None
    try:
        cert = x509.load_pem_x509_certificate(data["cert.pem"])
        ca = x509.load_pem_x509_certificate(data["ca.pem"])
    except ValueError:
        raise AdminError(f"{directory}: cert.pem or ca.pem is not a PEM certificate") from None
    try:
        key = load_pem_private_key(data["key.pem"], password=None)
    except (ValueError, TypeError):
        raise AdminError(f"{directory}/key.pem is not a clear PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise AdminError(f"{directory}/key.pem is not an EC key")
    if key.public_key() != cert.public_key():
        raise AdminError(f"{directory}: key.pem is not the key of cert.pem")
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        raise AdminError(f"{directory}: cert.pem is not issued by ca.pem") from None
    return Bundle(cert_pem(cert), cert_pem(ca), key, _host_named(cert, directory))


def _host_named(cert: x509.Certificate, directory: Path) -> str:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    hosts = [u[len(HOST_URI_PREFIX):] for u in uris if u.startswith(HOST_URI_PREFIX)]
    if len(hosts) != 1:
        raise AdminError(f"{directory}/cert.pem is no host credential: it names no host"
                         f" ({HOST_URI_PREFIX}<host>); issue one with `vbios host add` on"
                         " the remote")
    return hosts[0]


def key_path(pki_dir: Path, name: str) -> Path:
    """Where the home keeps the (encrypted) key of its credential at remote ``name``."""
    return pki_dir / "remotes" / f"{name}-key.pem"


def keep_key(path: Path, key: ec.EllipticCurvePrivateKey, passphrase: bytes) -> None:
    """Write the key encrypted under ``passphrase`` (0600 from its first byte)."""
    ensure_dir(path.parent)
    write_file_atomic(path, encrypted_key_pem(key, passphrase), PRIVATE_MODE)


def client_context(cert: bytes, ca: bytes, key_file: Path, passphrase: bytes
                   ) -> ssl.SSLContext:
    """The TLS client context of a remote: this host's certificate and its (encrypted)
    key, the remote's CA pinned, the remote's name checked; KeyUnreadable if the key
    cannot be read."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cadata=ca.decode("ascii"))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # load_cert_chain reads files: the certificate (public) goes through a private
    # temporary file; the key is read encrypted, decrypted in memory only.
    with tempfile.TemporaryDirectory(prefix="vbios-remote-") as scratch:
        cert_file = Path(scratch) / "cert.pem"
        fd = os.open(cert_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(cert)
        try:
            context.load_cert_chain(cert_file, key_file, password=passphrase)
        except (OSError, ssl.SSLError) as exc:
            raise KeyUnreadable(f"cannot load the remote credential key {key_file}: {exc}"
                                ) from None
    return context


def check_key(path: Path, passphrase: bytes) -> None:
    """KeyUnreadable unless the kept key decrypts with ``passphrase``."""
    load_private_key(path, passphrase)
