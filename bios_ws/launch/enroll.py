"""Enrollment of the host's attestation key (AK): TPM proof, then a certificate from our CA.

``enroll`` asks the TPM to enroll its AK against trusted EK CA certificates
(the TPM checks the EK certificate and proves the AK by credential activation,
see ``Tpm.enroll_attestation_key``), then has the installation CA certify the
AK and stores, in ``<home>/attestation/``: ``ak-cert.pem``, ``ek-cert.pem`` and
``ak.json`` (AK name, handle, creation time). Trusted EK CAs: the development
TPM's local CA for a ``dev`` home; otherwise the PEM (or DER) certificates the
admin put in ``<home>/attestation/ek-ca/`` (the TPM vendor's root and
intermediates). Enrolling again re-uses the persisted AK and re-issues its
certificate.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bios_ws.errors import AdminError
from bios_ws.home import Home
from bios_ws.pki.akcert import check_host_label, issue_ak_certificate
from bios_ws.pki.authority import Authority
from bios_ws.pki.files import PUBLIC_MODE, ensure_dir, write_file_atomic
from bios_ws.tpm.ekcert import MAX_ANCHOR_BYTES, dev_ek_anchors
from bios_ws.tpm.port import AK_HANDLE, Tpm

AK_RECORD_FORMAT = "bios-ws-ak-v1"
_MAX_RECORD_BYTES = 64 * 1024
_MAX_LABEL = 42


@dataclass(frozen=True)
class AttestationIdentity:
    """The enrolled AK: its certificate (PEM), the TPM's EK certificate (PEM), its TPM name."""

    ak_cert_pem: bytes
    ek_cert_pem: bytes
    ak_name: bytes


def ek_ca_dir(home: Home) -> Path:
    """Where the admin puts the TPM vendor's EK CA certificates (homes with a real TPM)."""
    return home.attestation_dir / "ek-ca"


def ak_record_path(home: Home) -> Path:
    return home.attestation_dir / "ak.json"


def _read_certificates(path: Path) -> bytes | None:
    """PEM of the certificates in ``path`` (PEM or DER), None if it holds none."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_ANCHOR_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_ANCHOR_BYTES:
        return None
    if b"-----BEGIN CERTIFICATE-----" in data:
        return data
    try:
        return x509.load_der_x509_certificate(data).public_bytes(serialization.Encoding.PEM)
    except ValueError:
        return None


def ek_anchors(home: Home) -> list[bytes]:
    """The EK trust anchors of ``home``; AdminError naming where they belong if there are none."""
    choice = home.tpm
    if choice.is_none:
        raise AdminError(f"{home.path} uses no TPM (initialized with --no-tpm):"
                         " there is no attestation key to enroll")
    if choice.is_dev:
        anchors = dev_ek_anchors(home.tpm_dir)
        if not anchors:
            raise AdminError(f"the development TPM of {home.path} has no local CA certificate"
                             f" in {home.tpm_dir / 'localca'}: start it with vbios tpm start")
        return anchors
    directory = ek_ca_dir(home)
    found: list[bytes] = []
    if directory.is_dir():
        for path in sorted(directory.iterdir()):
            if path.is_file() and not path.is_symlink():
                pem = _read_certificates(path)
                if pem is not None:
                    found.append(pem)
    if not found:
        raise AdminError(f"no trusted EK CA certificate in {directory}: put the TPM vendor's"
                         " root and intermediate CA certificates there (PEM), then enroll again")
    return found


def host_label() -> str:
    """This host's name, trimmed to what the AK certificate's subject can hold."""
    name = "".join(c for c in socket.gethostname() if c.isprintable()).strip()[:_MAX_LABEL]
    return name.strip() or "host"


def enroll(home: Home, tpm: Tpm, authority: Authority | None = None) -> AttestationIdentity:
    """Enroll the TPM's AK and certify it; ``authority`` None: the home's CA (unsealed).

    Without ``authority``, ``tpm`` is closed before the CA is loaded, since loading
    it opens the home's TPM (a swtpm serves one connection at a time); ``tpm``
    reconnects by itself if used afterwards.
    """
    anchors = ek_anchors(home)
    enrollment = tpm.enroll_attestation_key(anchors)
    if authority is None:
        tpm.close()
        authority = Authority.load(home)
    ak_cert = issue_ak_certificate(authority, enrollment.ak_public_pem, enrollment.ak_name,
                                   check_host_label(host_label()))
    ek_cert = x509.load_der_x509_certificate(enrollment.ek_certificate).public_bytes(
        serialization.Encoding.PEM)
    ensure_dir(home.attestation_dir)
    write_file_atomic(home.ek_cert, ek_cert, PUBLIC_MODE)
    write_file_atomic(home.ak_cert, ak_cert, PUBLIC_MODE)
    previous = read_ak_record(home)
    created = (previous.get("created") if previous and
               previous.get("name") == enrollment.ak_name.hex() else None)
    record = {
        "format": AK_RECORD_FORMAT,
        "name": enrollment.ak_name.hex(),
        "handle": f"{AK_HANDLE:#010x}",
        "created": created or datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_file_atomic(ak_record_path(home), (json.dumps(record, indent=2) + "\n").encode(),
                      PUBLIC_MODE)
    return AttestationIdentity(ak_cert, ek_cert, enrollment.ak_name)


def read_ak_record(home: Home) -> dict[str, Any] | None:
    """``ak.json`` of ``home``, or None if missing or damaged."""
    try:
        with ak_record_path(home).open("rb") as handle:
            data: Any = json.loads(handle.read(_MAX_RECORD_BYTES))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != AK_RECORD_FORMAT:
        return None
    return data


def load_identity(home: Home) -> AttestationIdentity:
    """The enrolled identity stored in ``home``; AdminError if none (or damaged)."""
    record = read_ak_record(home)
    try:
        ak_cert = home.ak_cert.read_bytes()
        ek_cert = home.ek_cert.read_bytes()
        if record is None:
            raise ValueError("no AK record")
        name = bytes.fromhex(str(record.get("name")))
        x509.load_pem_x509_certificate(ak_cert)
        x509.load_pem_x509_certificate(ek_cert)
    except (OSError, ValueError):
        raise AdminError(f"no attestation key enrolled in {home.path} (or its files are"
                         f" damaged): run vbios ak enroll --home {home.path}") from None
    return AttestationIdentity(ak_cert, ek_cert, name)


def ak_certificate_matches(home: Home, tpm: Tpm) -> bool:
    """True if the AK at AK_HANDLE has the key that ``home.ak_cert`` certifies."""
    try:
        cert = x509.load_pem_x509_certificate(home.ak_cert.read_bytes())
    except (OSError, ValueError):
        return False
    public = tpm.attestation_key_public()
    if public is None:
        return False
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return (cert.public_key().public_bytes(*spki)
            == serialization.load_pem_public_key(public).public_bytes(*spki))
