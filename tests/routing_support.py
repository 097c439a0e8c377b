"""What the routing tests share: a remote installation's CA and the host credential its
admin would issue (`vbios host add H --domains ... --out DIR` on the remote: cert.pem with
SAN urn:vbios:host:H, key.pem, ca.pem), and the remote's server certificate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from bios_ws.pki.certs import (
    Issued,
    cert_pem,
    clear_key_pem,
    leaf_builder,
    make_ca,
    make_server_cert,
    new_key,
)
from bios_ws.pki.remote_credentials import HOST_URI_PREFIX

NOW = datetime.now(UTC)


def host_credential(ca: Issued, host: str) -> Issued:
    key = new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"host {host}")])
    cert = (leaf_builder(ca, subject, key.public_key(), ExtendedKeyUsageOID.CLIENT_AUTH,
                         NOW, timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(f"{HOST_URI_PREFIX}{host}")]), critical=False)
            .sign(ca.key, hashes.SHA256()))
    return Issued(cert, key)


def write_bundle(directory: Path, ca: Issued, host: str) -> Issued:
    """A host bundle of ``ca`` for ``host`` in ``directory``; the credential."""
    issued = host_credential(ca, host)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "cert.pem").write_bytes(cert_pem(issued.cert))
    (directory / "key.pem").write_bytes(clear_key_pem(issued.key))
    (directory / "ca.pem").write_bytes(cert_pem(ca.cert))
    return issued


class RemoteInstallation:
    """A remote's CA and its server certificate for 127.0.0.1/localhost."""

    def __init__(self) -> None:
        self.ca = make_ca(NOW)
        self.server = make_server_cert(self.ca, NOW)
