"""Enrollment, renewal and provisioning state: how a guest gets and keeps its credential.

A domain created without a firmware image (provisioning state S1) gets it at its
first valid contact: an enrollment whose ticket checks out assigns the image
before it certifies the guest's key (S1 -> S2 -> S3).

``ticket`` (admin) records a one-time bootstrap URI for a domain. ``enroll``
(anonymous: the guest has no certificate yet) checks the URI's ticket (token,
expiry, single use, the domain's current incarnation), the guest's
certificate request, and the rate limits, then certifies the guest's own key.
``renew`` (the guest, over mutual TLS) certifies a fresh key of the same
domain; the certificate it replaces is revoked when the new one is first used
(``CredentialService.authenticate``). Every outcome is audited; a refusal
issues nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.credentials import CertificateStatus, TicketRecord
from bios_ws.domain.enrollment import (
    MAX_TICKET_LIFETIME,
    NEXT_STEP,
    ProvisioningState,
    Ticket,
    domain_enrollment_key,
    provisioning_state,
)
from bios_ws.domain.limits import RateLimiter
from bios_ws.domain.ports import Clock, UnitOfWorkFactory
from bios_ws.domain.principal import Principal, check_domain_id, is_domain_id
from bios_ws.errors import AccessDenied, DomainNotFound, InvalidRequest, VbiosError
from bios_ws.service.audit import audit_refusal
from bios_ws.service.bios import outcome_of, utc_now
from bios_ws.service.credentials import CredentialService, IssuedCertificate
from bios_ws.service.domains import DomainService

T = TypeVar("T")

#: Who gives a machine its firmware image at its first contact (provisioning S1).
PROVISIONING = Principal.admin("provisioning")

#: Enrollment attempts allowed per source address and per domain, per minute.
ATTEMPTS_PER_SOURCE = 10
ATTEMPTS_PER_DOMAIN = 5


@dataclass(frozen=True)
class ProvisioningView:
    state: ProvisioningState
    next_step: str
    certificate_not_after: datetime | None


class EnrollmentService:
    def __init__(self, uow: UnitOfWorkFactory, credentials: CredentialService,
                 domains: DomainService, clock: Clock = utc_now) -> None:
        self._uow = uow
        self._credentials = credentials
        self._domains = domains
        self._clock = clock
        self._by_source = RateLimiter(ATTEMPTS_PER_SOURCE, timedelta(minutes=1))
        self._by_domain = RateLimiter(ATTEMPTS_PER_DOMAIN, timedelta(minutes=1))

    # -- admin ----------------------------------------------------------------------

    def ticket(self, principal: Principal, domain_id: str, server_url: str,
               lifetime: timedelta = MAX_TICKET_LIFETIME) -> tuple[Ticket, str]:
        """A one-time bootstrap URI for ``domain_id``: the ticket and the URI."""
        def run() -> tuple[Ticket, str]:
            principal.require_admin()
            check_domain_id(domain_id)
            issuer = self._credentials.issuer()
            with self._uow() as uow:
                uow.begin_writing()
                incarnation = uow.credentials.incarnation(domain_id)
                if incarnation is None:
                    raise DomainNotFound(f"no domain {domain_id!r}")
                self._credentials.check_served_here(uow, domain_id)
                key = domain_enrollment_key(issuer.enrollment_key(), domain_id, incarnation)
                try:
                    ticket = Ticket.issue(domain_id, key, self._clock(), lifetime)
                except ValueError as exc:
                    raise InvalidRequest(str(exc)) from None
                uow.credentials.add_ticket(TicketRecord(ticket.nonce, domain_id, incarnation,
                                                        ticket.expires_at))
                uow.audit.append(self._record(str(principal), "CreateEnrollmentURI",
                                              domain_id, "ok",
                                              {"expires": ticket.expires_at.isoformat()}))
                uow.commit()
            return ticket, ticket.uri(server_url, issuer.ca_fingerprint())

        return self._audited(str(principal), "CreateEnrollmentURI", domain_id, run)

    # -- the guest --------------------------------------------------------------------

    def enroll(self, source: str, ticket: Ticket, request: bytes) -> IssuedCertificate:
        """Certify the guest's key if the ticket allows it (anonymous caller ``source``)."""
        who = f"enrollment:{source[:64]}"

        def run() -> IssuedCertificate:
            now = self._clock()
            domain_id = check_domain_id(ticket.domain_id)
            if not self._by_source.allow(source, now):
                raise AccessDenied("too many enrollment attempts from this address: wait a"
                                   " minute")
            if not self._by_domain.allow(domain_id, now):
                raise AccessDenied(f"too many enrollment attempts for {domain_id!r}: wait a"
                                   " minute")
            issuer = self._credentials.issuer()
            with self._uow() as uow:  # a valid first contact, before anything changes
                self._check(ticket, uow.credentials.ticket(ticket.nonce),
                            uow.credentials.incarnation(domain_id), issuer.enrollment_key(),
                            now)
            if not self._domains.has_firmware(domain_id):  # S1: its image comes first
                self._domains.assign_firmware(PROVISIONING, domain_id)
            with self._uow() as uow:
                uow.begin_writing()
                incarnation = uow.credentials.incarnation(domain_id)
                record = uow.credentials.ticket(ticket.nonce, for_update=True)
                self._check(ticket, record, incarnation, issuer.enrollment_key(), now)
                assert incarnation is not None
                issued = issuer.certify(request, domain_id, incarnation, now,
                                        self._credentials.guest_validity)
                if not uow.credentials.use_ticket(ticket.nonce, now):
                    raise AccessDenied("this bootstrap URI was already used")
                uow.credentials.add(issued.record)
                uow.audit.append(self._record(who, "Enroll", domain_id, "ok",
                                              {"issued": issued.record.serial_hex}))
                uow.commit()
            return issued

        return self._audited(who, "Enroll", ticket.domain_id, run)

    def renew(self, principal: Principal, request: bytes) -> IssuedCertificate:
        """A certificate for the guest's fresh key; the presented one is revoked once the
        new one is used."""
        def run() -> IssuedCertificate:
            domain_id = principal.own_domain()
            if principal.serial is None:
                raise AccessDenied("renewal needs the certificate it replaces")
            issuer = self._credentials.issuer()
            now = self._clock()
            with self._uow() as uow:
                uow.begin_writing()
                incarnation = uow.credentials.incarnation(domain_id)
                if incarnation is None or incarnation != principal.incarnation:
                    raise AccessDenied(f"domain {domain_id!r} is not this certificate's")
                issued = issuer.certify(request, domain_id, incarnation, now,
                                        self._credentials.guest_validity)
                record = dataclasses.replace(issued.record, replaces=principal.serial)
                uow.credentials.add(record)
                uow.audit.append(self._record(str(principal), "RenewCertificate", domain_id,
                                              "ok", {"issued": record.serial_hex,
                                                     "replaces": f"{principal.serial:X}"}))
                uow.commit()
            return dataclasses.replace(issued, record=record)

        return self._audited(str(principal), "RenewCertificate", principal.domain_id, run)

    def provisioning(self, principal: Principal, domain_id: str | None = None
                     ) -> ProvisioningView:
        """The provisioning state of the guest's own domain (or, for the admin, of
        ``domain_id``)."""
        if domain_id is None:
            domain_id = principal.own_domain()
        else:
            principal.require_admin()
            check_domain_id(domain_id)
        now = self._clock()
        with self._uow() as uow:
            if uow.credentials.incarnation(domain_id) is None:
                raise DomainNotFound(f"no domain {domain_id!r}")
            active = [r for r in uow.credentials.issued(domain_id)
                      if r.status_at(now) is CertificateStatus.ACTIVE]
        state = provisioning_state(has_firmware=self._domains.has_firmware(domain_id),
                                   has_credential=bool(active))
        latest = max((r.not_after for r in active), default=None)
        return ProvisioningView(state, NEXT_STEP[state], latest)

    # -- helpers ------------------------------------------------------------------------

    @staticmethod
    def _check(ticket: Ticket, record: TicketRecord | None, incarnation: str | None,
               installation_key: bytes, now: datetime) -> None:
        if incarnation is None:
            raise AccessDenied(f"domain {ticket.domain_id!r} does not exist (or was"
                               " decommissioned): nothing to enroll")
        key = domain_enrollment_key(installation_key, ticket.domain_id, incarnation)
        reason = ticket.refusal(key, now)
        if reason is None and (record is None or record.domain_id != ticket.domain_id
                               or record.incarnation != incarnation):
            reason = "no such bootstrap URI was made for this domain"
        if reason is None and record is not None and record.used_at is not None:
            reason = "this bootstrap URI was already used"
        if reason is not None:
            raise AccessDenied(reason)

    def _audited(self, who: str, op: str, domain_id: str | None, run: Callable[[], T]) -> T:
        try:
            return run()
        except VbiosError as exc:
            named = domain_id if domain_id is not None and is_domain_id(domain_id) else None
            audit_refusal(self._uow, self._record(who, op, named, outcome_of(exc)))
            raise

    def _record(self, who: str, op: str, domain_id: str | None, outcome: str,
                changes: dict[str, object] | None = None) -> AuditRecord:
        return AuditRecord(self._clock(), who, op, domain_id, outcome,
                           digest_changes(changes or {}))

