"""Client credentials over their life: issue, list, revoke, rotate, and the check of
every certificate a caller presents.

The certificate authority is a port (``Issuer``): the CA key lives in the
``pki`` adapter and is unsealed only where it is used. Every issue and
revocation is recorded in the store and audited; after a revocation the CRL is
published at once, so the next TLS handshake of a revoked certificate fails.
"""

from __future__ import annotations

import abc
import builtins
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.credentials import (
    CertificateRecord,
    RevocationReason,
    format_serial,
    host_refusal,
    refusal,
)
from bios_ws.domain.hosts import check_guest_here, check_runs_here
from bios_ws.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bios_ws.domain.power import MachineRecord
from bios_ws.domain.principal import Principal, Role, check_domain_id, is_domain_id
from bios_ws.errors import AccessDenied, AdminError, DomainNotFound, VbiosError
from bios_ws.service.audit import audit_refusal
from bios_ws.service.bios import outcome_of, utc_now
from bios_ws.service.events import credentials_revoked
from bios_ws.service.sel import record_revocations

T = TypeVar("T")

#: How long a certificate found to count is not looked up again, and how many are kept.
AUTH_CACHE_SECONDS = 1.0
AUTH_CACHE_ENTRIES = 10_000

#: Guest certificates are short-lived (renewed by the guest); the admin's last longer.
DEFAULT_GUEST_VALIDITY = timedelta(days=30)
ADMIN_VALIDITY = timedelta(days=730)  # as the admin bundle `vbios init` writes


@dataclass(frozen=True)
class IssuedCertificate:
    """A client certificate (PEM) for a key its holder keeps, with the CA certificate."""

    record: CertificateRecord
    cert_pem: bytes
    ca_pem: bytes


@dataclass(frozen=True)
class ClientBundle(IssuedCertificate):
    """A client certificate with its key (PEM, the key in clear) and the CA certificate."""

    key_pem: bytes


class Issuer(abc.ABC):
    """The installation's CA: issues client certificates and signs the CRL."""

    @abc.abstractmethod
    def issue(self, role: Role, domain_id: str | None, incarnation: str | None,
              now: datetime, validity: timedelta) -> ClientBundle:
        """A new key and certificate for the admin or a guest domain's incarnation."""

    @abc.abstractmethod
    def issue_host(self, host: str, now: datetime, validity: timedelta) -> ClientBundle:
        """A new key and certificate for another installation's host ``host``
        (``urn:vbios:host:<host>``; its record's subject is the host's name)."""

    @abc.abstractmethod
    def certify(self, request: bytes, domain_id: str, incarnation: str, now: datetime,
                validity: timedelta) -> IssuedCertificate:
        """A guest certificate for the key of a PKCS#10 ``request`` (DER) the guest made;
        InvalidRequest if the request is malformed, weak or asks for another identity."""

    @abc.abstractmethod
    def enrollment_key(self) -> bytes:
        """The installation's secret from which each domain's enrollment key derives."""

    @abc.abstractmethod
    def ca_fingerprint(self) -> str:
        """SHA-256 of the CA certificate (DER), in hex: what a guest pins."""

    @abc.abstractmethod
    def check(self) -> None:
        """Refuse now (KeyUnreadable) if the CA key cannot be used."""

    @abc.abstractmethod
    def publish_revocations(self, revoked: builtins.list[tuple[int, datetime]],
                            now: datetime, *, force: bool = False) -> bool:
        """Sign and publish a CRL listing ``revoked`` unless the published one lists them
        and is fresh (``force``: always); whether it published."""


def end_domain(uow: UnitOfWork, domain_id: str, now: datetime) -> list[str]:
    """A domain is deleted (inside the caller's unit of work): it has no incarnation any
    more and every certificate it ever had is revoked; the serials revoked now."""
    uow.credentials.end_incarnation(domain_id)
    uow.host_grants.remove_domain(domain_id)  # a domain made again is granted afresh
    serials = [r.serial for r in uow.credentials.issued(domain_id)]
    revoked = uow.credentials.revoke(serials, now, RevocationReason.CESSATION_OF_OPERATION)
    credentials_revoked(uow, revoked, now)
    return [r.serial_hex for r in revoked]


class CredentialService:
    def __init__(self, uow: UnitOfWorkFactory, issuer: Callable[[], Issuer],
                 clock: Clock = utc_now, *,
                 guest_validity: timedelta = DEFAULT_GUEST_VALIDITY,
                 monotonic: Callable[[], float] = time.monotonic,
                 host: str | None = None) -> None:
        self._uow = uow
        self._host = host  # the fleet host this process is: it serves its domains' guests
        self._issuer = issuer  # called when needed: it may unseal the CA key
        self.guest_validity = guest_validity
        #: Renewals whose predecessor is known to be revoked (this process's view).
        self._settled: set[int] = set()
        #: Certificates found to count, until when (monotonic seconds).
        self._counted: dict[tuple[object, ...], float] = {}
        self._monotonic = monotonic
        self._clock = clock

    # -- every call -----------------------------------------------------------------

    def authenticate(self, principal: Principal) -> None:
        """AccessDenied unless the certificate ``principal`` presented still counts.

        A certificate found to count is not looked up again for ``AUTH_CACHE_SECONDS``
        (a kept-alive connection makes many calls): a revocation reaches a running
        server first through the CRL, at the handshake and on kept-alive connections;
        this registry check stands behind it.

        A host speaking for a guest (``Principal.via_host``) counts when its certificate
        does and the store grants it that domain: a grant removed is seen within the
        same bound as a revocation."""
        key = (principal.serial, principal.role, principal.domain_id, principal.incarnation,
               principal.host)
        if self._counted.get(key, 0.0) > self._monotonic():
            return
        with self._uow() as uow:
            record = None if principal.serial is None else uow.credentials.get(principal.serial)
            incarnation = (uow.credentials.incarnation(principal.domain_id)
                           if principal.domain_id is not None else None)
            machine = self._machine(uow, principal.domain_id)
            granted = (principal.via_host and principal.host is not None
                       and principal.domain_id is not None
                       and uow.host_grants.granted(principal.host, principal.domain_id))
        reason = (refusal(principal, record, incarnation, self._clock())
                  or host_refusal(principal, granted))
        if reason is not None:
            raise AccessDenied(reason)
        assert record is not None
        if machine is not None:
            check_guest_here(machine, self._host)  # its guest is served where it runs
        if record.replaces is not None and record.serial not in self._settled:
            self._supersede(principal, record)
        if len(self._counted) >= AUTH_CACHE_ENTRIES:
            self._counted.clear()
        self._counted[key] = self._monotonic() + AUTH_CACHE_SECONDS

    def audit_refused(self, who: str, operation: str, domain_id: str | None) -> None:
        """Audit a call refused before it reached its use case, as ``who`` (``host:H``,
        or the certificate's own principal): its certificate or its
        ``X-Vbios-On-Behalf-Of`` header named no caller that counts (``docs/remote.md``)."""
        named = domain_id if domain_id is not None and is_domain_id(domain_id) else None
        audit_refusal(self._uow, AuditRecord(self._clock(), who, operation, named,
                                             outcome_of(AccessDenied("refused")),
                                             digest_changes({})))

    def forget_counted(self) -> None:
        """Look every certificate up afresh (a grant was removed in this process)."""
        self._counted.clear()

    def check_served_here(self, uow: UnitOfWork, domain_id: str) -> None:
        """DomainElsewhere if another host runs the domain: its guest's credential is that
        host's to issue (this host would not serve it)."""
        machine = self._machine(uow, domain_id)
        if machine is not None:
            check_runs_here(machine, self._host)

    def _machine(self, uow: UnitOfWork, domain_id: str | None) -> MachineRecord | None:
        if domain_id is None or self._host is None:
            return None
        try:
            return uow.machines.get(domain_id)
        except DomainNotFound:
            return None  # the incarnation check refuses it

    def _supersede(self, principal: Principal, renewal: CertificateRecord) -> None:
        """A renewed certificate is used for the first time: the one it replaces is
        revoked now (and the CRL published)."""
        assert renewal.replaces is not None
        with self._uow() as uow:
            revoked = uow.credentials.revoke([renewal.replaces], self._clock(),
                                             RevocationReason.SUPERSEDED)
            credentials_revoked(uow, revoked, self._clock())
            if revoked:
                uow.audit.append(self._record(
                    principal, "SupersedeCertificate", renewal.domain_id, "ok",
                    {"revoked": revoked[0].serial_hex, "by": renewal.serial_hex}))
            uow.commit()
        if revoked:
            self.publish_revocations()
        self._settled.add(renewal.serial)

    # -- admin ----------------------------------------------------------------------

    def issuer(self) -> Issuer:
        """The installation's CA (loaded now if it was not)."""
        return self._issuer()

    def check_issuer(self) -> None:
        """Load the CA now (KeyUnreadable if it cannot be), before a change needs it."""
        self._issuer().check()

    def issue_guest(self, principal: Principal, domain_id: str) -> ClientBundle:
        """A new certificate for the current incarnation of ``domain_id``."""
        def run(uow: UnitOfWork) -> ClientBundle:
            check_domain_id(domain_id)
            incarnation = uow.credentials.incarnation(domain_id)
            if incarnation is None:
                raise DomainNotFound(f"no domain {domain_id!r}")
            self.check_served_here(uow, domain_id)
            return self._issue(uow, Role.GUEST, domain_id, incarnation)

        return self._admin_action(principal, "IssueCertificate", domain_id, run)

    def rotate_admin(self, principal: Principal) -> ClientBundle:
        """A new admin certificate; every admin certificate issued before is revoked."""
        def run(uow: UnitOfWork) -> ClientBundle:
            former = [r.serial for r in uow.credentials.issued() if r.role is Role.ADMIN]
            bundle = self._issue(uow, Role.ADMIN, None, None)
            credentials_revoked(uow, uow.credentials.revoke(
                former, self._clock(), RevocationReason.SUPERSEDED), self._clock())
            return bundle

        return self._admin_action(principal, "RotateAdmin", None, run, publish=True)

    def list(self, principal: Principal, domain_id: str | None = None
             ) -> builtins.list[CertificateRecord]:
        principal.require_admin()
        if domain_id is not None:
            check_domain_id(domain_id)
        with self._uow() as uow:
            return uow.credentials.issued(domain_id)

    def revoke(self, principal: Principal, *, serial: int | None = None,
               domain_id: str | None = None, role: Role | None = None,
               reason: RevocationReason = RevocationReason.UNSPECIFIED,
               ) -> builtins.list[CertificateRecord]:
        """Revoke one certificate (by ``serial``; of ``role`` if given) or every
        certificate of ``domain_id``; the certificates revoked now."""
        def run(uow: UnitOfWork) -> builtins.list[CertificateRecord]:
            if (serial is None) == (domain_id is None):
                raise AdminError("name one certificate serial or one domain to revoke")
            if serial is not None:
                record = uow.credentials.get(serial)
                if record is None or (role is not None and record.role is not role):
                    kind = "" if role is None else f"{role.value} "
                    raise AdminError(f"no {kind}certificate with serial {format_serial(serial)}")
                if record.revoked:
                    return []
                serials = [serial]
            else:
                assert domain_id is not None
                check_domain_id(domain_id)
                serials = [r.serial for r in uow.credentials.issued(domain_id)]
                if not serials and uow.credentials.incarnation(domain_id) is None:
                    raise DomainNotFound(f"no domain {domain_id!r}")
            revoked = uow.credentials.revoke(serials, self._clock(), reason)
            credentials_revoked(uow, revoked, self._clock())
            return revoked

        target = domain_id if serial is None else None
        changes = {"serial": None if serial is None else format_serial(serial)}
        return self._admin_action(principal, "RevokeCertificate", target, run,
                                  publish=True, changes=changes)

    def publish_revocations(self, *, force: bool = False) -> bool:
        """Bring the published CRL in line with the store (and fresh); whether it changed.
        When it did, every certificate is looked up afresh (one may have been revoked)."""
        with self._uow() as uow:
            revoked = uow.credentials.revoked()
        changed = self._issuer().publish_revocations(revoked, self._clock(), force=force)
        if changed:
            self._counted.clear()
        return changed

    # -- helpers ----------------------------------------------------------------------

    def _issue(self, uow: UnitOfWork, role: Role, domain_id: str | None,
               incarnation: str | None) -> ClientBundle:
        validity = ADMIN_VALIDITY if role is Role.ADMIN else self.guest_validity
        bundle = self._issuer().issue(role, domain_id, incarnation, self._clock(), validity)
        uow.credentials.add(bundle.record)
        return bundle

    def _admin_action(self, principal: Principal, op: str, domain_id: str | None,
                         run: Callable[[UnitOfWork], T], *, publish: bool = False,
                         changes: Mapping[str, object] | None = None) -> T:
        try:
            principal.require_admin()
            with self._uow() as uow:
                uow.begin_writing()
                result = run(uow)
                details = dict(changes or {})
                if isinstance(result, ClientBundle):
                    details["issued"] = result.record.serial_hex
                elif isinstance(result, builtins.list):
                    details["revoked"] = [r.serial_hex for r in result]
                    record_revocations(uow, result, self._clock())
                uow.audit.append(self._record(principal, op, domain_id, "ok", details))
                uow.commit()
        except VbiosError as exc:
            audit_refusal(self._uow, self._record(principal, op, domain_id, outcome_of(exc)))
            raise
        if publish:
            self.publish_revocations()
        return result

    def _record(self, principal: Principal, op: str, domain_id: str | None, outcome: str,
                changes: Mapping[str, object] | None = None) -> AuditRecord:
        return AuditRecord(self._clock(), str(principal), op, domain_id, outcome,
                           digest_changes(changes or {}))
