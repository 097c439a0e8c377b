"""Admin use cases on the set of guest domains (the `vbios domain` commands)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.ports import Clock, DomainSummary, UnitOfWorkFactory
from bios_ws.domain.principal import Principal, check_domain_id
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.domain.state import DomainState
from bios_ws.errors import VbiosError
from bios_ws.service.bios import utc_now

T = TypeVar("T")


class DomainService:
    def __init__(
        self, uow: UnitOfWorkFactory, registry: AttributeRegistry, clock: Clock = utc_now
    ) -> None:
        self._uow = uow
        self._registry = registry
        self._clock = clock

    def create(self, principal: Principal, domain_id: str) -> DomainState:
        def run() -> DomainState:
            principal.require_admin()
            check_domain_id(domain_id)
            state = DomainState.new(domain_id, self._registry)
            with self._uow() as uow:
                uow.domains.add(state, self._clock())
                uow.audit.append(self._record(principal, "CreateDomain", domain_id, "ok"))
                uow.commit()
            return state

        return self._audited(principal, "CreateDomain", domain_id, run)

    def delete(self, principal: Principal, domain_id: str) -> None:
        def run() -> None:
            principal.require_admin()
            with self._uow() as uow:
                uow.domains.delete(domain_id)
                uow.audit.append(self._record(principal, "DeleteDomain", domain_id, "ok"))
                uow.commit()

        self._audited(principal, "DeleteDomain", domain_id, run)

    def list(self, principal: Principal) -> list[DomainSummary]:
        principal.require_admin()
        with self._uow() as uow:
            return uow.domains.list()

    def _audited(self, principal: Principal, op: str, domain_id: str, run: Callable[[], T]) -> T:
        try:
            return run()
        except VbiosError as exc:
            with self._uow() as uow:
                uow.audit.append(self._record(principal, op, domain_id, f"refused:{exc.code}"))
                uow.commit()
            raise

    def _record(self, principal: Principal, op: str, domain_id: str, outcome: str) -> AuditRecord:
        return AuditRecord(self._clock(), str(principal), op, domain_id, outcome,
                           digest_changes({}))
