"""Use cases of a guest's vBIOS: settings, passwords, boot; and the admin's apply.

Each call authorizes the principal, runs in one transaction and, when it
changes state or is refused trying, appends an audit entry. A refused write
rolls its transaction back, so stored state is untouched; its audit entry is
written in a transaction of its own, under the refusal limit (``service.audit``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory, retrying
from bios_ws.domain.principal import Principal, check_domain_id, is_domain_id
from bios_ws.domain.registry import AttributeRegistry, Value
from bios_ws.domain.state import ApplyTime, BootOption, DomainState
from bios_ws.errors import (
    AdminError,
    DomainElsewhere,
    KeyUnreadable,
    ServiceRestricted,
    VbiosError,
    VersionConflict,
)
from bios_ws.service.audit import audit_refusal
from bios_ws.service.events import settings_changed
from bios_ws.service.registry_keeper import RegistryKeeper


@dataclass(frozen=True)
class AttributesView:
    version: int
    values: dict[str, Value]
    setup_password_set: bool


@dataclass(frozen=True)
class BootView:
    version: int
    options: tuple[BootOption, ...]
    order: tuple[str, ...]
    boot_next: str | None


#: A mutation returns what to record in the audit digest (never secret values).
Mutation = Callable[[DomainState], Mapping[str, object]]



def outcome_of(exc: VbiosError) -> str:
    """The audit outcome of a refusal: "refused:<Code>", or "failed:<Code>" for a failure."""
    refused = (exc.fault_kind == "Client" or isinstance(exc, (ServiceRestricted, DomainElsewhere))
               or (isinstance(exc, AdminError) and not isinstance(exc, KeyUnreadable)))
    return f"{'refused' if refused else 'failed'}:{exc.code}"


def utc_now() -> datetime:
    return datetime.now(UTC)


#: Called before every state change; raises (ServiceRestricted) to refuse it.
WriteGate = Callable[[], None]

#: Who acts when a machine does something by itself (a boot applies pending values).
PLATFORM = Principal.admin("platform")


class BiosService:
    def __init__(
        self, uow: UnitOfWorkFactory, registry: AttributeRegistry, clock: Clock = utc_now,
        gate: WriteGate | None = None,
    ) -> None:
        self._uow = uow
        self._registry = RegistryKeeper(registry)
        self._clock = clock
        self.gate = gate

    @property
    def registry(self) -> AttributeRegistry:
        """The registry in force, as of this object's last call (each call refreshes it
        from the store: ``service.registry``)."""
        return self._registry.registry

    def registry_in_force(self) -> AttributeRegistry:
        """The registry in force now (refreshed from the store)."""
        with self._uow() as uow:
            return self._registry.refresh(uow)

    # -- reads ---------------------------------------------------------------

    def get_registry(self, principal: Principal) -> AttributeRegistry:
        principal.own_domain()
        with self._uow() as uow:
            return self._registry.refresh(uow)

    def get_attributes(
        self, principal: Principal, names: Sequence[str] | None = None
    ) -> AttributesView:
        state = self._read(principal.own_domain())
        values = state.current
        if names:
            for name in names:
                self.registry.get(name)
            values = {n: state.current[n] for n in names if n in state.current}
        return AttributesView(state.version, dict(values), state.setup_password_set)

    def get_pending(self, principal: Principal) -> AttributesView:
        state = self._read(principal.own_domain())
        return AttributesView(state.version, dict(state.pending), state.setup_password_set)

    def get_boot(self, principal: Principal) -> BootView:
        state = self._read(principal.own_domain())
        return BootView(state.version, state.boot_options, state.boot_order, state.boot_next)

    # -- guest writes ----------------------------------------------------------

    def set_attributes(
        self,
        principal: Principal,
        changes: Mapping[str, object],
        apply_time: ApplyTime = ApplyTime.IMMEDIATE,
        expected_version: int | None = None,
        password: str | None = None,
    ) -> int:
        def mutate(state: DomainState) -> Mapping[str, object]:
            state.check_setup_password(password)
            typed = state.set_attributes(self.registry, changes, apply_time)
            return {"apply_time": apply_time.value, "changes": typed}

        return self.write(principal, "SetAttributes", principal.own_domain,
                           mutate, expected_version)

    def cancel_pending(
        self, principal: Principal, expected_version: int | None = None,
        password: str | None = None,
    ) -> int:
        def mutate(state: DomainState) -> Mapping[str, object]:
            state.check_setup_password(password)
            cancelled = sorted(state.pending)
            state.cancel_pending()
            return {"cancelled": cancelled}

        return self.write(principal, "CancelPendingAttributes", principal.own_domain,
                           mutate, expected_version)

    def reset_to_defaults(
        self, principal: Principal, expected_version: int | None = None,
        password: str | None = None,
    ) -> int:
        def mutate(state: DomainState) -> Mapping[str, object]:
            state.check_setup_password(password)
            return {"pending": state.reset_to_defaults(self.registry)}

        return self.write(principal, "ResetAttributesToDefaults", principal.own_domain,
                           mutate, expected_version)

    def change_password(
        self,
        principal: Principal,
        name: str,
        old_password: str | None,
        new_password: str,
        expected_version: int | None = None,
        password: str | None = None,
    ) -> int:
        def mutate(state: DomainState) -> Mapping[str, object]:
            state.change_password(self.registry, name, old_password, new_password, password)
            return {"password": name, "cleared": new_password == ""}

        return self.write(principal, "ChangePassword", principal.own_domain,
                           mutate, expected_version)

    def set_boot_order(
        self, principal: Principal, order: Sequence[str], expected_version: int | None = None,
        password: str | None = None,
    ) -> int:
        def mutate(state: DomainState) -> Mapping[str, object]:
            state.check_setup_password(password)
            state.set_boot_order(order)
            return {"order": list(order)}

        return self.write(principal, "SetBootOrder", principal.own_domain,
                           mutate, expected_version)

    def set_boot_next(
        self, principal: Principal, option_id: str | None, expected_version: int | None = None,
        password: str | None = None,
    ) -> int:
        def mutate(state: DomainState) -> Mapping[str, object]:
            state.check_setup_password(password)
            state.set_boot_next(option_id)
            return {"boot_next": option_id}

        return self.write(principal, "SetBootNext", principal.own_domain,
                           mutate, expected_version)

    # -- admin -----------------------------------------------------------------

    def apply_pending(self, principal: Principal, domain_id: str, *,
                      at: str | None = None, consume_boot_next: bool = False) -> int:
        """Pending values become current (what a boot does to the domain's settings);
        ``at`` names the boot that does it (for the audit entry). A boot without firmware
        of its own also consumes BootNext."""

        def mutate(state: DomainState) -> Mapping[str, object]:
            applied = state.apply_pending(consume_boot_next=consume_boot_next)
            changes: dict[str, object] = {"applied": applied}
            if at is not None:
                changes["at"] = at
            return changes

        def target() -> str:
            principal.require_admin_of(domain_id)  # or the domain's platform (routed)
            return check_domain_id(domain_id)

        return self.write(principal, "ApplyPendingAttributes", target, mutate, None,
                           requested=domain_id)

    def has_pending(self, domain_id: str) -> bool:
        """Whether the domain's next boot has something to apply (values or BootNext)."""
        state = self._read(domain_id)
        return bool(state.pending) or state.boot_next is not None

    def apply_at_boot(self, domain_id: str, cause: str, *, consume_boot_next: bool) -> bool:
        """What every boot of the domain's machine does to its settings, through
        ``apply_pending``: pending values become current (and, for a machine without
        firmware of its own, BootNext is consumed). Nothing is written when nothing is
        to be done. False when restricted mode keeps them pending (audited as refused)."""
        state = self._read(domain_id)
        if not state.pending and not (consume_boot_next and state.boot_next is not None):
            return True
        try:
            self.apply_pending(PLATFORM, domain_id, at=cause,
                               consume_boot_next=consume_boot_next)
        except ServiceRestricted:
            return False
        return True

    def state_of(self, domain_id: str) -> DomainState:
        """The domain's whole settings state (for the platform's plan of a boot)."""
        return self._read(domain_id)

    def firmware_consumed_boot_next(self, domain_id: str, option_id: str) -> None:
        """The firmware used BootNext ``option_id`` (read back after a run): it is gone,
        unless a new one was set meanwhile. Audited as the firmware's."""

        def mutate(state: DomainState) -> Mapping[str, object]:
            if state.boot_next == option_id:
                state.boot_next = None
            return {"boot_next_consumed": option_id}

        self.write(PLATFORM, "FirmwareConsumedBootNext", lambda: domain_id, mutate, None,
                    requested=domain_id, gated=False)

    def setting(self, domain_id: str, name: str) -> Value | None:
        """The current value of one attribute of a domain (for the platform's own rules)."""
        return self._read(domain_id).current.get(name)

    # -- the one write path ----------------------------------------------------

    def _read(self, domain_id: str) -> DomainState:
        with self._uow() as uow:
            self._registry.refresh(uow)
            return uow.domains.get(domain_id)

    def write(
        self,
        principal: Principal,
        operation: str,
        target: Callable[[], str],
        mutate: Mutation,
        expected_version: int | None,
        requested: str | None = None,
        *,
        gated: bool = True,
    ) -> int:
        """The one write path of a domain's settings state, for every capability that keeps
        its state there: authorize (``target`` names the domain or refuses), check the
        expected version, mutate, save with a new version, audit (refusals too). A write
        that changes nothing (a value set to what it is) keeps the version and writes no
        audit entry or event, so callers using expected versions do not conflict on no-ops.
        ``gated``: refused in restricted mode (what the firmware did is recorded anyway).
        A unit that lost to a concurrent one runs again (``ports.retrying``): ``mutate``
        changes the state it is given and nothing else."""
        domain_id = requested if requested is not None and is_domain_id(requested) else None
        try:
            domain_id = target()
            if gated and self.gate is not None:
                self.gate()
            found = domain_id

            def unit(uow: UnitOfWork) -> int:  # store only: run again if it lost
                state = uow.domains.get(found, for_update=True)
                self._registry.refresh(uow)  # under the write lock: an apply is not midway
                before = state.version
                if expected_version is not None and expected_version != before:
                    raise VersionConflict(
                        f"domain is at version {before}, not {expected_version}"
                    )
                unchanged = state.snapshot()
                changes = mutate(state)
                if state.snapshot() == unchanged:  # a no-op: no new version, nothing to audit
                    return before
                state.version = before + 1
                uow.domains.save(state, expected_version=before)
                uow.audit.append(self._record(principal, operation, found, "ok", changes))
                settings_changed(uow, operation, found, state.version, self._clock())
                uow.commit()
                return state.version

            return retrying(self._uow, unit)
        except VbiosError as exc:
            audit_refusal(self._uow, self._record(principal, operation, domain_id,
                                                  outcome_of(exc), {}))
            raise

    def _record(
        self, principal: Principal, operation: str, domain_id: str | None, outcome: str,
        changes: Mapping[str, object],
    ) -> AuditRecord:
        return AuditRecord(
            time=self._clock(),
            principal=str(principal),
            operation=operation,
            domain_id=domain_id,
            outcome=outcome,
            changes_digest=digest_changes(changes),
        )
