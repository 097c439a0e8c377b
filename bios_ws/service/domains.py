"""Admin use cases on the set of guest domains (the `vbios domain` commands).

Every domain is a machine of one kind (``MachineKind``), chosen when it is
created; its machine is prepared on the platform of that kind first (a QEMU
guest's variable store is copied), and removed when the domain is deleted
(a running guest is turned off first).
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.credentials import new_incarnation
from bios_ws.domain.firmware import KeyDatabases
from bios_ws.domain.hosts import check_runs_here
from bios_ws.domain.ports import Clock, DomainSummary, UnitOfWorkFactory
from bios_ws.domain.power import MachineKind, MachineRecord, PowerState
from bios_ws.domain.principal import Principal, check_domain_id
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.domain.state import DomainState
from bios_ws.errors import (
    DomainNotFound,
    InvalidPowerTransition,
    PlatformUnavailable,
    VbiosError,
)
from bios_ws.platform.port import NetworkBoot, Platform
from bios_ws.service.audit import audit_refusal
from bios_ws.service.bios import utc_now
from bios_ws.service.credentials import end_domain
from bios_ws.service.registry_keeper import RegistryKeeper
from bios_ws.service.secureboot import follow_keys

T = TypeVar("T")


@dataclass(frozen=True)
class DomainDetails:
    domain_id: str
    version: int
    created_at: datetime
    machine: MachineRecord


class DomainService:
    def __init__(
        self, uow: UnitOfWorkFactory, registry: AttributeRegistry,
        platforms: Mapping[MachineKind, Platform], clock: Clock = utc_now,
        default_keys: Callable[[], KeyDatabases] = KeyDatabases,
        *, publish_revocations: Callable[[], object] = lambda: None, host: str | None = None,
    ) -> None:
        self._uow = uow
        self._host = host  # the fleet host this process is (domain.hosts)
        self._publish_revocations = publish_revocations
        self._registry = RegistryKeeper(registry)
        self._platforms = platforms
        self._clock = clock
        self._default_keys = default_keys

    def create(self, principal: Principal, domain_id: str,
               kind: MachineKind = MachineKind.SIMULATED, *, firmware: bool = True
               ) -> DomainState:
        """A new domain and its machine; without ``firmware`` the machine has only a loader
        (provisioning state S1) until its first contact or ``assign_firmware``."""
        def run() -> DomainState:
            principal.require_admin()
            check_domain_id(domain_id)
            platform = self._platform(kind)
            platform.check_available()
            with self._uow() as uow:
                state = DomainState.new(domain_id, self._registry.refresh(uow, for_update=True))
                follow_keys(state, self._default_keys())
                uow.domains.add(state, self._clock())  # DomainExists before any file
                uow.machines.add(MachineRecord(domain_id, kind, host=self._host))
                uow.credentials.set_incarnation(domain_id, new_incarnation())
                uow.audit.append(self._record(principal, "CreateDomain", domain_id, "ok",
                                              {"machine": kind.value, "firmware": firmware}))
                platform.create(domain_id, firmware=firmware)
                try:
                    uow.commit()
                except BaseException:
                    platform.remove(domain_id)
                    raise
            return state

        return self._audited(principal, "CreateDomain", domain_id, run)

    def delete(self, principal: Principal, domain_id: str) -> None:
        """Delete a domain; its machine is turned off first, and removed. Every
        certificate it ever had is revoked (and the CRL published); its firmware
        inventory, update jobs and uploads, and its thermal state, are forgotten."""

        def run() -> None:
            principal.require_admin()
            with self._uow() as uow:
                uow.domains.get(domain_id)  # DomainNotFound before touching the machine
                record = uow.machines.get(domain_id)
            check_runs_here(record, self._host)
            platform = self._platform(record.kind)
            with platform.lock(domain_id):
                platform.remove(domain_id)
                with self._uow() as uow:
                    uow.domains.delete(domain_id)
                    uow.machines.delete(domain_id)
                    uow.firmware.forget_domain(domain_id)  # its inventory, jobs, uploads
                    uow.sel.forget_domain(domain_id)  # its event log, alarm and watchdog
                    uow.timers.forget_domain(domain_id)
                    uow.thermal.delete(domain_id)
                    revoked = end_domain(uow, domain_id, self._clock())
                    uow.audit.append(self._record(principal, "DeleteDomain", domain_id, "ok",
                                                  {"revoked": revoked}))
                    uow.audit.retire_scope(domain_id)  # a new domain of this name sees none
                    uow.events.retire_domain(domain_id)  # nor its events; its subscriptions end
                    uow.commit()
            if revoked:
                self._publish_revocations()

        self._audited(principal, "DeleteDomain", domain_id, run)

    def list(self, principal: Principal) -> list[DomainSummary]:
        principal.require_admin()
        with self._uow() as uow:
            return uow.domains.list()

    def show(self, principal: Principal, domain_id: str) -> DomainDetails:
        principal.require_admin()
        check_domain_id(domain_id)
        with self._uow() as uow:
            summaries = {s.domain_id: s for s in uow.domains.list()}
            machine = uow.machines.get(domain_id)
        summary = summaries.get(domain_id)
        if summary is None:
            raise DomainNotFound(f"no domain {domain_id!r}")
        return DomainDetails(domain_id, summary.version, summary.created_at, machine)

    # -- what a machine is made of (from its next boot) ---------------------------

    def has_firmware(self, domain_id: str) -> bool:
        return self._platform(self._kind(domain_id)).has_firmware(domain_id)

    def assign_firmware(self, principal: Principal, domain_id: str) -> bool:
        """Give the domain's machine its firmware image (S1 -> S2); whether it had none."""
        def run() -> bool:
            principal.require_admin()
            platform = self._platform(self._kind(domain_id))
            if platform.has_firmware(domain_id):
                return False
            with platform.lock(domain_id):
                platform.assign_firmware(domain_id)
                with self._uow() as uow:
                    uow.audit.append(self._record(principal, "AssignFirmware", domain_id,
                                                  "ok"))
                    uow.commit()
            return True

        return self._audited(principal, "AssignFirmware", domain_id, run)

    def attach_disk(self, principal: Principal, domain_id: str, path: Path) -> None:
        self._machine_change(principal, "AttachDisk", domain_id, {"disk": str(path)},
                             lambda platform: platform.attach_disk(domain_id, path))

    def detach_disk(self, principal: Principal, domain_id: str, path: Path) -> None:
        self._machine_change(principal, "DetachDisk", domain_id, {"disk": str(path)},
                             lambda platform: platform.detach_disk(domain_id, path))

    def disks(self, principal: Principal, domain_id: str) -> builtins.list[Path]:
        principal.require_admin()
        return self._platform(self._kind(domain_id)).disks(domain_id)

    def set_network_boot(self, principal: Principal, domain_id: str,
                         source: NetworkBoot) -> None:
        self._machine_change(
            principal, "SetNetworkBoot", domain_id,
            {key: None if value is None else str(value)
             for key, value in vars(source).items()},
            lambda platform: platform.set_network_boot(domain_id, source))

    def network_boot(self, principal: Principal, domain_id: str) -> NetworkBoot:
        principal.require_admin()
        return self._platform(self._kind(domain_id)).network_boot(domain_id)

    def take(self, principal: Principal, domain_id: str, *, force: bool = False) -> str | None:
        """Make this host run the domain's machine (its settings, credentials and history
        stay: they are the fleet's): the machine is made here afresh (its firmware image
        and variable store from the domain's settings, as at creation), and the former
        host no longer drives it nor serves its guest, whose certificate was that host's
        (the guest enrolls here). The machine must be off, as its host last recorded;
        ``force`` takes it anyway, for a host that is down. The former host, or None."""
        def run() -> str | None:
            principal.require_admin()
            if self._host is None:
                raise PlatformUnavailable("this process is no fleet host")
            with self._uow() as uow:
                before = uow.machines.get(domain_id)
            if before.host == self._host:
                return None
            if before.state is not PowerState.OFF and not force:
                raise InvalidPowerTransition(
                    f"domain {domain_id} is {before.state.value} on host {before.host}: turn"
                    " it off there first (or --force, if that host is down)",
                    attribute=before.state.value)
            platform = self._platform(before.kind)
            platform.check_available()
            with platform.lock(domain_id):
                platform.remove(domain_id)  # anything left here from an earlier stay
                platform.create(domain_id, firmware=True)
                with self._uow() as uow:
                    uow.begin_writing()
                    record = uow.machines.get(domain_id, for_update=True)
                    taken = dataclasses.replace(record, host=self._host, state=PowerState.OFF,
                                                version=record.version + 1)
                    uow.machines.save(taken, record.version)
                    uow.audit.append(self._record(principal, "TakeDomain", domain_id, "ok", {
                        "from": record.host, "to": self._host, "forced": force,
                        "state": record.state.value}))
                    uow.commit()
            return before.host

        return self._audited(principal, "TakeDomain", domain_id, run)

    def _kind(self, domain_id: str) -> MachineKind:
        """The kind of the domain's machine, which must run on this host."""
        check_domain_id(domain_id)
        with self._uow() as uow:
            record = uow.machines.get(domain_id)
        check_runs_here(record, self._host)
        return record.kind

    def _machine_change(self, principal: Principal, op: str, domain_id: str,
                        changes: Mapping[str, object],
                        act: Callable[[Platform], None]) -> None:
        def run() -> None:
            principal.require_admin()
            platform = self._platform(self._kind(domain_id))
            with platform.lock(domain_id):
                act(platform)
                with self._uow() as uow:
                    uow.audit.append(self._record(principal, op, domain_id, "ok", changes))
                    uow.commit()

        self._audited(principal, op, domain_id, run)

    def _platform(self, kind: MachineKind) -> Platform:
        platform = self._platforms.get(kind)
        if platform is None:
            raise PlatformUnavailable(f"this service runs no {kind.value} machines")
        return platform

    def _audited(self, principal: Principal, op: str, domain_id: str, run: Callable[[], T]) -> T:
        try:
            return run()
        except VbiosError as exc:
            audit_refusal(self._uow, self._record(principal, op, domain_id,
                                                  f"refused:{exc.code}"))
            raise

    def _record(self, principal: Principal, op: str, domain_id: str, outcome: str,
                changes: Mapping[str, object] | None = None) -> AuditRecord:
        return AuditRecord(self._clock(), str(principal), op, domain_id, outcome,
                           digest_changes(changes or {}))
