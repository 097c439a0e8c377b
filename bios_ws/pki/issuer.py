"""The installation's CA as the credential use cases' ``Issuer``.

The CA key is decrypted on first use only (with a TPM its passphrase is
unsealed then) and kept in memory; a server hands over the authority it
loaded at start. Issued keys are returned in memory, never written here.
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from bios_ws.domain.credentials import CertificateRecord
from bios_ws.domain.principal import Role
from bios_ws.errors import AdminError
from bios_ws.home import Home
from bios_ws.pki import certs, crl
from bios_ws.pki.authority import Authority
from bios_ws.pki.requests import checked_request
from bios_ws.service.credentials import ClientBundle, IssuedCertificate, Issuer


def record_of(cert: x509.Certificate, role: Role, domain_id: str | None,
              incarnation: str | None, issued_at: datetime) -> CertificateRecord:
    """What the store keeps of an issued client certificate."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    subject = str(names[0].value) if names else cert.subject.rfc4514_string()
    return CertificateRecord(cert.serial_number, role, domain_id, incarnation, subject,
                             cert.not_valid_before_utc, cert.not_valid_after_utc, issued_at)


class AuthorityIssuer(Issuer):
    """Issues with a CA held in memory (``authority()``, loaded on first use)."""

    @abc.abstractmethod
    def authority(self) -> Authority: ...

    def check(self) -> None:
        self.authority()

    def issue(self, role: Role, domain_id: str | None, incarnation: str | None,
              now: datetime, validity: timedelta) -> ClientBundle:
        authority = self.authority()
        if role is Role.ADMIN:
            issued = authority.issue_admin(now, validity)
        elif domain_id is not None and incarnation is not None:
            issued = authority.issue_domain(domain_id, incarnation, now, validity)
        else:
            raise AdminError("a guest certificate names a domain and its incarnation")
        record = record_of(issued.cert, role, domain_id, incarnation, now)
        return ClientBundle(record, certs.cert_pem(issued.cert), certs.cert_pem(authority.cert),
                            certs.clear_key_pem(issued.key))

    def issue_host(self, host: str, now: datetime, validity: timedelta) -> ClientBundle:
        authority = self.authority()
        issued = authority.issue_host(host, now, validity)
        record = record_of(issued.cert, Role.HOST, None, None, now)
        return ClientBundle(record, certs.cert_pem(issued.cert), certs.cert_pem(authority.cert),
                            certs.clear_key_pem(issued.key))

    def certify(self, request: bytes, domain_id: str, incarnation: str, now: datetime,
                validity: timedelta) -> IssuedCertificate:
        public = checked_request(request, domain_id)
        authority = self.authority()
        cert = authority.certify_guest_key(domain_id, incarnation, public, now, validity)
        record = record_of(cert, Role.GUEST, domain_id, incarnation, now)
        return IssuedCertificate(record, certs.cert_pem(cert), certs.cert_pem(authority.cert))

    def enrollment_key(self) -> bytes:
        return self.authority().derived_secret(b"vbios enrollment key v1")

    def ca_fingerprint(self) -> str:
        return self.authority().cert.fingerprint(hashes.SHA256()).hex()


class MemoryIssuer(AuthorityIssuer):
    """A throw-away CA in memory (in-process tests): its CRL is kept in ``crl_pem``."""

    def __init__(self, now: datetime) -> None:
        self._ca = Authority(certs.make_ca(now))
        self.crl_pem: bytes | None = None

    def authority(self) -> Authority:
        return self._ca

    def publish_revocations(self, revoked: list[tuple[int, datetime]], now: datetime, *,
                            force: bool = False) -> bool:
        self.crl_pem = crl.build_crl(self._ca.issued, revoked, now)
        return True


class HomeIssuer(AuthorityIssuer):
    """Issues with the CA of ``home``; publishes its CRL at ``home.crl_file``."""

    def __init__(self, home: Home, authority: Callable[[], Authority] | None = None) -> None:
        self._home = home
        self._load = authority or (lambda: Authority.load(home))
        self._authority: Authority | None = None
        self._lock = threading.Lock()

    def authority(self) -> Authority:
        with self._lock:
            if self._authority is None:
                self._authority = self._load()
            return self._authority

    def publish_revocations(self, revoked: list[tuple[int, datetime]], now: datetime, *,
                            force: bool = False) -> bool:
        authority = self.authority()
        return crl.publish(crl.CrlFile(self._home.crl_file, authority.cert), authority.issued,
                           revoked, now, force=force)
