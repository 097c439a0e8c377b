"""The signer certificates the admin trusts for firmware capsules: add, remove, list.

Admin only. A certificate is trusted as a capsule signer or as the root of its chain,
so it must be able to sign: its KeyUsage (when present) allows digitalSignature or
keyCertSign. An expired one is refused; adding one already trusted changes nothing and
says so. Every change is audited; every refusal is audited under the refusal limit and
leaves the set as it was.
"""

from __future__ import annotations

import builtins
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.firmware_trust import TrustedSigner, normalize_fingerprint
from bios_ws.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bios_ws.domain.principal import Principal
from bios_ws.errors import InvalidRequest, VbiosError
from bios_ws.service.audit import audit_refusal
from bios_ws.service.bios import outcome_of, utc_now

T = TypeVar("T")

#: A signer certificate is small; anything larger is refused before it is parsed.
MAX_CERTIFICATE_BYTES = 64 * 1024

TRUST_OPERATION = "TrustFirmwareSigner"
DISTRUST_OPERATION = "DistrustFirmwareSigner"


@dataclass(frozen=True)
class TrustAdded:
    signer: TrustedSigner
    #: False when the certificate was already trusted (nothing changed).
    added: bool


class FirmwareTrustService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock = utc_now) -> None:
        self._uow = uow
        self._clock = clock

    def add(self, principal: Principal, certificate: bytes) -> TrustAdded:
        """Trust one certificate (PEM or DER)."""
        def run(uow: UnitOfWork) -> TrustAdded:
            candidate = signer_of(certificate, now)
            known = uow.firmware_trust.get(candidate.fingerprint)
            if known is not None:
                return TrustAdded(known, added=False)
            uow.firmware_trust.add(candidate)
            return TrustAdded(candidate, added=True)

        now = self._clock()
        return self._admin_change(principal, TRUST_OPERATION, run,
                                  lambda done: done.added, lambda done: done.signer)

    def remove(self, principal: Principal, reference: str | bytes) -> TrustedSigner:
        """Trust no more the certificate named by its SHA-256 ``reference`` (str) or given
        itself (bytes: PEM or DER); refused when it is not trusted."""
        def run(uow: UnitOfWork) -> TrustedSigner:
            fingerprint = _fingerprint_of(reference)
            known = uow.firmware_trust.get(fingerprint)
            if known is None or not uow.firmware_trust.remove(fingerprint):
                raise InvalidRequest(f"no trusted firmware signer has fingerprint {fingerprint}")
            return known

        return self._admin_change(principal, DISTRUST_OPERATION, run,
                                  lambda _: True, lambda removed: removed)

    def list(self, principal: Principal) -> builtins.list[TrustedSigner]:
        """Every trusted signer, oldest first."""
        try:
            principal.require_admin()
        except VbiosError as exc:
            audit_refusal(self._uow, self._record(principal, "ListFirmwareSigners",
                                                  outcome_of(exc)))
            raise
        with self._uow() as uow:
            return uow.firmware_trust.list()

    def _admin_change(self, principal: Principal, operation: str,
                      run: Callable[[UnitOfWork], T], changed: Callable[[T], bool],
                      signer: Callable[[T], TrustedSigner]) -> T:
        try:
            principal.require_admin()
            with self._uow() as uow:
                uow.begin_writing()
                result = run(uow)
                if changed(result):
                    details = {"fingerprint": signer(result).fingerprint,
                               "subject": signer(result).subject}
                    uow.audit.append(self._record(principal, operation, "ok", details))
                    uow.commit()
        except VbiosError as exc:
            audit_refusal(self._uow, self._record(principal, operation, outcome_of(exc)))
            raise
        return result

    def _record(self, principal: Principal, operation: str, outcome: str,
                changes: Mapping[str, object] | None = None) -> AuditRecord:
        return AuditRecord(self._clock(), str(principal), operation, None, outcome,
                           digest_changes(changes or {}))


def load_certificate(data: bytes) -> x509.Certificate:
    """The one certificate in ``data`` (PEM or DER); InvalidRequest otherwise."""
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise InvalidRequest(f"a certificate is at most {MAX_CERTIFICATE_BYTES} bytes")
    if b"-----BEGIN" in data:
        try:
            found = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise InvalidRequest("this is not a PEM certificate") from None
        if len(found) != 1:
            raise InvalidRequest(f"this PEM holds {len(found)} certificates: give one at a time")
        return found[0]
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise InvalidRequest("this is not a certificate (neither PEM nor DER)") from None


def signer_of(data: bytes, now: datetime) -> TrustedSigner:
    """The trusted-signer record of the certificate in ``data``, refused (InvalidRequest)
    when it cannot sign or has expired at ``now``."""
    certificate = load_certificate(data)
    subject = certificate.subject.rfc4514_string() or "(empty subject)"
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    except ValueError:
        raise InvalidRequest(f"the certificate {subject} has unreadable extensions") from None
    if usage is not None and not (usage.digital_signature or usage.key_cert_sign):
        raise InvalidRequest(f"the certificate {subject} cannot sign: its KeyUsage allows"
                             " neither digitalSignature nor keyCertSign")
    not_after = certificate.not_valid_after_utc
    if not_after < now:
        raise InvalidRequest(f"the certificate {subject} expired on {not_after:%Y-%m-%d}")
    der = certificate.public_bytes(serialization.Encoding.DER)
    return TrustedSigner(fingerprint=hashlib.sha256(der).hexdigest(), der=der,
                         subject=subject, not_after=not_after, added_at=now)


def _fingerprint_of(reference: str | bytes) -> str:
    if isinstance(reference, bytes):
        der = load_certificate(reference).public_bytes(serialization.Encoding.DER)
        return hashlib.sha256(der).hexdigest()
    fingerprint = normalize_fingerprint(reference)
    if fingerprint is None:
        raise InvalidRequest(f"{reference[:80]!r} is not a SHA-256 fingerprint (64 hex digits)")
    return fingerprint
