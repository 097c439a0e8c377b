"""Delegate hosts: other installations that may speak for chosen domains of this one.

The "BIOS in a cloud" of ``docs/remote.md``: this installation (B) holds the routed
state of some domains, and the host that runs them (A, another installation with its
own CA) forwards its guests' calls here. B's admin makes A a *delegate*: B's CA
issues A a host certificate (``urn:vbios:host:A``, ``Role.HOST``, recorded like every
client certificate) and the store grants A the domains named (``host_grants``). A's
forwarded call counts as the guest of a granted domain (``Principal.on_behalf_of``,
``CredentialService.authenticate``). Revoking A's certificates publishes the CRL as
for a guest's; removing A also drops its grants.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.credentials import (
    CertificateRecord,
    CertificateStatus,
    HostGrant,
    RevocationReason,
)
from bios_ws.domain.hosts import check_host_name
from bios_ws.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bios_ws.domain.principal import Principal, Role, check_domain_id
from bios_ws.errors import AdminError, DomainNotFound, InvalidRequest, VbiosError
from bios_ws.service.audit import audit_refusal
from bios_ws.service.bios import outcome_of
from bios_ws.service.credentials import ClientBundle, CredentialService
from bios_ws.service.events import credentials_revoked

T = TypeVar("T")

#: A host certificate lasts a year: an installation's credential, renewed by its admin
#: (revoke, then add again).
HOST_VALIDITY = timedelta(days=365)


@dataclass(frozen=True)
class Delegate:
    """A host holding (or having held) a host certificate of this installation."""

    name: str
    #: The domains it may speak for, by name.
    domains: tuple[str, ...]
    #: Its certificates, oldest first.
    certificates: tuple[CertificateRecord, ...]


class DelegateService:
    def __init__(self, uow: UnitOfWorkFactory, credentials: CredentialService,
                 clock: Clock, *, validity: timedelta = HOST_VALIDITY) -> None:
        self._uow = uow
        self._credentials = credentials
        self._clock = clock
        self.validity = validity

    def add(self, principal: Principal, host: str, domain_ids: Iterable[str]) -> ClientBundle:
        """A host certificate for ``host``, which may speak for exactly ``domain_ids`` from
        now on. Refused while ``host`` holds an active certificate (revoke it first), when
        ``host`` names a host of this store, or a domain does not exist here."""
        domains = sorted(set(domain_ids))

        def run(uow: UnitOfWork) -> ClientBundle:
            check_host_name(host)
            if not domains:
                raise AdminError("name the domains the host may speak for (--domains D1,D2)")
            for domain_id in domains:
                try:
                    check_domain_id(domain_id)
                except InvalidRequest as exc:
                    raise AdminError(exc.message) from None
                if uow.credentials.incarnation(domain_id) is None:
                    raise DomainNotFound(f"no domain {domain_id!r}")
                self._credentials.check_served_here(uow, domain_id)
            if uow.hosts.get(host) is not None:
                raise AdminError(f"{host} is a host of this store (vbios host list): a"
                                 " delegate host needs a name of its own")
            now = self._clock()
            active = [r for r in _certificates(uow, host)
                      if r.status_at(now) is CertificateStatus.ACTIVE]
            if active:
                raise AdminError(
                    f"host {host} holds an active certificate (serial {active[0].serial_hex}):"
                    f" revoke it first (vbios host revoke {host})")
            bundle = self._credentials.issuer().issue_host(host, now, self.validity)
            uow.credentials.add(bundle.record)
            uow.host_grants.replace(host, domains, now)
            return bundle

        return self._admin_action(principal, "AddHost", run,
                                  {"host": host, "domains": domains})

    def revoke(self, principal: Principal, host: str,
               reason: RevocationReason = RevocationReason.UNSPECIFIED
               ) -> builtins.list[CertificateRecord]:
        """Revoke every certificate of ``host`` (its grants stay: ``add`` issues a new
        certificate); the certificates revoked now."""
        def run(uow: UnitOfWork) -> builtins.list[CertificateRecord]:
            return self._revoke(uow, host, reason)

        return self._admin_action(principal, "RevokeHost", run, {"host": host},
                                  publish=True)

    def remove(self, principal: Principal, host: str) -> builtins.list[CertificateRecord]:
        """Revoke every certificate of ``host`` and drop its grants; the certificates
        revoked now."""
        def run(uow: UnitOfWork) -> builtins.list[CertificateRecord]:
            revoked = self._revoke(uow, host, RevocationReason.CESSATION_OF_OPERATION)
            uow.host_grants.remove_host(host)
            return revoked

        try:
            return self._admin_action(principal, "RemoveHost", run, {"host": host},
                                      publish=True)
        finally:
            self._credentials.forget_counted()  # this process sees the grants gone now

    def list(self, principal: Principal) -> builtins.list[Delegate]:
        """Every host holding a host certificate or a grant, by name."""
        principal.require_admin()
        with self._uow() as uow:
            certificates = [r for r in uow.credentials.issued() if r.role is Role.HOST]
            grants = uow.host_grants.list()
        return delegates(certificates, grants)

    # -- helpers ------------------------------------------------------------------------

    def _revoke(self, uow: UnitOfWork, host: str, reason: RevocationReason
                ) -> builtins.list[CertificateRecord]:
        check_host_name(host)
        held = _certificates(uow, host)
        if not held and not uow.host_grants.list(host):
            raise AdminError(f"no delegate host {host} (vbios host list)")
        revoked = uow.credentials.revoke([r.serial for r in held], self._clock(), reason)
        credentials_revoked(uow, revoked, self._clock())
        return revoked

    def _admin_action(self, principal: Principal, op: str, run: Callable[[UnitOfWork], T],
                      changes: Mapping[str, object], *, publish: bool = False) -> T:
        try:
            principal.require_admin()
            with self._uow() as uow:
                uow.begin_writing()
                result = run(uow)
                details = dict(changes)
                if isinstance(result, ClientBundle):
                    details["issued"] = result.record.serial_hex
                elif isinstance(result, builtins.list):
                    details["revoked"] = [r.serial_hex for r in result]
                uow.audit.append(self._record(principal, op, "ok", details))
                uow.commit()
        except VbiosError as exc:
            audit_refusal(self._uow, self._record(principal, op, outcome_of(exc), changes))
            raise
        if publish:
            self._credentials.publish_revocations()
        return result

    def _record(self, principal: Principal, op: str, outcome: str,
                changes: Mapping[str, object]) -> AuditRecord:
        return AuditRecord(self._clock(), str(principal), op, None, outcome,
                           digest_changes(changes))


def is_delegate(uow: UnitOfWork, name: str) -> bool:
    """Whether ``name`` is a delegate host's (it holds a host certificate or a grant): no
    home of the store may register under it."""
    return bool(uow.host_grants.list(name) or _certificates(uow, name))


def _certificates(uow: UnitOfWork, host: str) -> builtins.list[CertificateRecord]:
    return [r for r in uow.credentials.issued() if r.role is Role.HOST and r.subject == host]


def delegates(certificates: Iterable[CertificateRecord], grants: Iterable[HostGrant]
              ) -> builtins.list[Delegate]:
    """The delegate hosts that ``certificates`` (of role host) and ``grants`` name."""
    domains: dict[str, builtins.list[str]] = {}
    held: dict[str, builtins.list[CertificateRecord]] = {}
    for grant in grants:
        domains.setdefault(grant.host, []).append(grant.domain_id)
    for record in certificates:
        held.setdefault(record.subject, []).append(record)
    return [Delegate(name, tuple(sorted(domains.get(name, []))), tuple(held.get(name, [])))
            for name in sorted(set(domains) | set(held))]
