"""The attribute registry in force: which one, checking a new one, putting it in force.

The registry in force is kept in the store (host records): ``REGISTRY_DIGEST_KEY``
holds its SHA-256, and its version is the registry's generation, which every
worker compares on each call (one primary-key read) and reloads the registry
(``REGISTRY_TEXT_KEY``) from when it moved; so an apply reaches running servers
without a restart. The file ``registry.json`` of the home is the copy a starting
server compares with the store (``check_at_start``), and the one measured into
the service PCR.

Putting a registry in force (``apply``) is one transaction: every domain is made
to conform (``bios_ws.domain.registry_change``), a domain whose values change gets a
new version, each reset value is audited, and the new generation is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bios_ws.domain.principal import Principal
from bios_ws.domain.registry_change import (
    Conformed,
    RegistryDocument,
    RejectedValue,
    conform,
    rejected_values,
)
from bios_ws.errors import RegistryError, VbiosError
from bios_ws.service.audit import audit_refusal
from bios_ws.service.bios import outcome_of
from bios_ws.service.events import settings_changed
from bios_ws.service.registry_keeper import (
    REGISTRY_DIGEST_KEY,
    REGISTRY_TEXT_KEY,
    InForce,
)

APPLY_OPERATION = "ApplyAttributeRegistry"
RESET_OPERATION = "ResetRejectedValue"


@dataclass(frozen=True)
class ApplyReport:
    """What putting a registry in force did, per domain that changed."""

    digest: str
    generation: int
    domains: dict[str, Conformed]

    def to_json_obj(self) -> dict[str, object]:
        return {"sha256": self.digest, "generation": self.generation,
                "domains": {d: c.to_json_obj() for d, c in sorted(self.domains.items())}}


class RegistryService:
    """The admin's use cases on the registry in force."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    def in_force(self) -> InForce | None:
        with self._uow() as uow:
            return _in_force(uow)

    def check(self, document: RegistryDocument) -> list[RejectedValue]:
        """Every stored value (current and pending, of every domain) ``document`` rejects."""
        with self._uow() as uow:
            found: list[RejectedValue] = []
            for summary in uow.domains.list():
                found.extend(rejected_values(uow.domains.get(summary.domain_id),
                                             document.registry))
            return found

    def apply(self, principal: Principal, document: RegistryDocument, *,
              reset_invalid: bool = False) -> ApplyReport:
        """Put ``document`` in force, in one transaction; refused (RegistryError naming the
        rejected values) while any stored value is rejected, unless ``reset_invalid``."""
        try:
            return self._apply(principal, document, reset_invalid)
        except VbiosError as exc:
            audit_refusal(self._uow, _recorder(principal, None, self._clock())(
                APPLY_OPERATION, {"sha256": document.digest}, outcome_of(exc)))
            raise

    def _apply(self, principal: Principal, document: RegistryDocument,
               reset_invalid: bool) -> ApplyReport:
        principal.require_admin()
        now = self._clock()
        with self._uow() as uow:
            uow.records.get(REGISTRY_DIGEST_KEY, for_update=True)  # writers wait from here
            changed: dict[str, Conformed] = {}
            records: list[AuditRecord] = []
            states = [uow.domains.get(s.domain_id, for_update=True) for s in uow.domains.list()]
            rejected = [r for state in states for r in rejected_values(state,
                                                                         document.registry)]
            if rejected and not reset_invalid:
                raise RegistryError(refusal_message(rejected))
            for state in states:
                conformed = conform(state, document.registry)
                if not conformed.changed:
                    continue
                before = state.version
                state.version = before + 1
                uow.domains.save(state, expected_version=before)
                changed[state.domain_id] = conformed
                record = _recorder(principal, state.domain_id, now)
                records.extend(record(RESET_OPERATION, reset.to_json_obj())
                               for reset in conformed.resets)
                records.append(record(APPLY_OPERATION, {"sha256": document.digest,
                                                        **conformed.to_json_obj()}))
                settings_changed(uow, APPLY_OPERATION, state.domain_id, state.version, now)
            uow.records.put(REGISTRY_TEXT_KEY, document.text, now)
            generation = uow.records.put(REGISTRY_DIGEST_KEY, document.digest, now).version
            records.append(_recorder(principal, None, now)(
                APPLY_OPERATION, {"sha256": document.digest, "generation": generation,
                                  "domains": sorted(changed)}))
            for entry in records:
                uow.audit.append(entry)
            uow.commit()
        return ApplyReport(document.digest, generation, changed)

    def check_at_start(self, file: RegistryDocument, path: str) -> str | None:
        """What a starting server does with the home's registry file: a store that records
        no registry takes it (when no stored value is rejected); a file that differs from
        the registry in force is refused, naming the rejected values and the command that
        puts it in force. A line saying what happened, or None when nothing did."""
        in_force = self.in_force()
        if in_force is not None and in_force.digest == file.digest:
            return None
        rejected = self.check(file)
        if in_force is None and not rejected:
            report = self.apply(Principal.admin("serve"), file)
            return (f"attribute registry {path} (sha256 {file.digest}) recorded in force,"
                    f" generation {report.generation}")
        why = ("no registry is recorded in force" if in_force is None else
               f"it differs from the registry in force (sha256 {in_force.digest})")
        command = f"vbios registry apply {path}"
        if rejected:
            command += " --reset-invalid"
        lines = [f"{path} (sha256 {file.digest}): {why}; refusing to serve."]
        if rejected:
            lines.append(f"{len(rejected)} stored value(s) it rejects:")
            lines.extend(f"  {r.describe()}" for r in rejected)
        lines.append(f"Check it with `vbios registry check {path}`, put it in force with"
                     f" `{command}`, or restore the registry in force.")
        raise RegistryError("\n".join(lines))


def refusal_message(rejected: list[RejectedValue]) -> str:
    return (f"{len(rejected)} stored value(s) the new registry rejects (first: "
            f"{rejected[0].describe()}); nothing changed: reset them to the new defaults"
            " with --reset-invalid")


def _in_force(uow: UnitOfWork) -> InForce | None:
    record = uow.records.get(REGISTRY_DIGEST_KEY)
    text = uow.records.get(REGISTRY_TEXT_KEY)
    if record is None or text is None:
        return None
    return InForce(record.value, record.version,
                   RegistryDocument.parse(text.value).registry.registry_version)


def _recorder(principal: Principal, domain_id: str | None, now: datetime
              ) -> Callable[..., AuditRecord]:
    def record(operation: str, changes: dict[str, object], outcome: str = "ok"
               ) -> AuditRecord:
        return AuditRecord(time=now, principal=str(principal), operation=operation,
                           domain_id=domain_id, outcome=outcome,
                           changes_digest=digest_changes(changes))

    return record
