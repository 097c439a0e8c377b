"""The installation's certificate revocation list: signed by the CA, one PEM file.

The server loads it into every TLS context (``VERIFY_CRL_CHECK_LEAF``): a
revoked client certificate fails its handshake. A CRL past its nextUpdate
fails *every* handshake, so it is re-signed long before: ``CRL_VALIDITY`` is a
week and a CRL older than ``CRL_REFRESH_AFTER`` (a day) is replaced. Writers
(the CLI, every server worker) serialise on a lock file beside it and write
atomically, so a reader never sees half a CRL.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bios_ws.errors import KeyUnreadable
from bios_ws.pki.certs import Issued
from bios_ws.pki.files import PUBLIC_MODE, write_file_atomic

CRL_VALIDITY = timedelta(days=7)
CRL_REFRESH_AFTER = timedelta(days=1)
#: Backdated like certificates, so a peer whose clock is a little behind accepts it.
CRL_BACKDATE = timedelta(minutes=5)

Revoked = Sequence[tuple[int, datetime]]


def build_crl(ca: Issued, revoked: Revoked, now: datetime,
              validity: timedelta = CRL_VALIDITY) -> bytes:
    """A CRL of ``ca`` listing ``revoked`` (serial, time), as PEM.

    Its CRL number is the signing time in microseconds: it only grows."""
    ca_ski = ca.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - CRL_BACKDATE)
        .next_update(now + validity)
        .add_extension(x509.CRLNumber(int(now.timestamp() * 1_000_000)), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                       critical=False)
    )
    for serial, at in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(at).build())
    crl = builder.sign(ca.key, hashes.SHA256())
    return crl.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class CrlState:
    """What a CRL file says: the revoked serials and its validity."""

    serials: frozenset[int]
    this_update: datetime
    next_update: datetime

    def needs_refresh(self, serials: frozenset[int], now: datetime) -> bool:
        """Whether a CRL listing ``serials`` at ``now`` should replace this one."""
        return (serials != self.serials or now - self.this_update >= CRL_REFRESH_AFTER
                or now >= self.next_update)


def parse_crl(pem: bytes, ca_cert: x509.Certificate) -> CrlState:
    """The state of a CRL; ValueError unless ``ca_cert`` signed it and it has a nextUpdate."""
    crl = x509.load_pem_x509_crl(pem)
    public = ca_cert.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        raise ValueError("the CA certificate does not hold an EC key")
    if crl.issuer != ca_cert.subject or not crl.is_signature_valid(public):
        raise ValueError("the CRL is not signed by this installation's CA")
    next_update = crl.next_update_utc
    if next_update is None:
        raise ValueError("the CRL has no nextUpdate")
    return CrlState(frozenset(entry.serial_number for entry in crl), crl.last_update_utc,
                    next_update)


class CrlFile:
    """The CRL file of a home (``pki/crl.pem``) and the lock its writers take."""

    def __init__(self, path: Path, ca_cert: x509.Certificate) -> None:
        self.path = path
        self.ca_cert = ca_cert

    def read(self) -> CrlState | None:
        """The file's state; None if it is missing or not a valid CRL of this CA."""
        try:
            return parse_crl(self.path.read_bytes(), self.ca_cert)
        except (OSError, ValueError):
            return None

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the writers' lock (a file beside the CRL) for the block."""
        fd = os.open(self.path.with_name(f".{self.path.name}.lock"),
                     os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def write(self, pem: bytes) -> None:
        write_file_atomic(self.path, pem, PUBLIC_MODE)


def publish(crl_file: CrlFile, ca: Issued, revoked: Revoked, now: datetime, *,
            force: bool = False) -> bool:
    """Re-sign and write the CRL unless the file already lists ``revoked`` and is fresh
    (``force``: always); whether it was written."""
    if ca.cert.subject != crl_file.ca_cert.subject:
        raise KeyUnreadable("the CA key does not belong to this CRL's CA")
    serials = frozenset(serial for serial, _ in revoked)
    with crl_file.locked():
        state = crl_file.read()
        if not force and state is not None and not state.needs_refresh(serials, now):
            return False
        crl_file.write(build_crl(ca, revoked, now))
    return True
