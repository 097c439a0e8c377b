"""In-memory implementations of the ports, for tests and for `--store memory`.

A ``MemoryStore`` holds committed data; each ``MemoryUnitOfWork`` works on a
copy and publishes it on commit, under one lock, so it behaves like a
serializable transaction.
"""

from __future__ import annotations

import builtins
import dataclasses
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime

from bios_ws.domain.audit import (
    GENESIS_HASH,
    HOST_WIDE,
    AuditEntry,
    AuditRecord,
    SeenEntry,
    scope_of,
    visible_to,
)
from bios_ws.domain.audit_limit import RefusalWindow
from bios_ws.domain.credentials import (
    CertificateRecord,
    HostGrant,
    RevocationReason,
    TicketRecord,
)
from bios_ws.domain.fakes_events import EventData, MemoryEvents
from bios_ws.domain.fakes_firmware import FirmwareData, MemoryFirmware
from bios_ws.domain.fakes_hosts import MemoryHostGrants, MemoryHosts
from bios_ws.domain.fakes_routing import MemoryRouting, RoutingData
from bios_ws.domain.fakes_system import MemorySel, MemoryTimers, SystemData
from bios_ws.domain.fakes_thermal import MemoryThermal
from bios_ws.domain.firmware_trust import TrustedSigner
from bios_ws.domain.hosts import HostEntry
from bios_ws.domain.ports import (
    AuditLog,
    CredentialRepository,
    DomainRepository,
    DomainSummary,
    FirmwareTrustRepository,
    HostRecord,
    HostRecords,
    MachineRepository,
    RefusalCounts,
    UnitOfWork,
)
from bios_ws.domain.power import MachineRecord, PowerState
from bios_ws.domain.state import DomainState
from bios_ws.domain.thermal_policy import ThermalRecord
from bios_ws.domain.turns import ThreadTurns
from bios_ws.errors import DomainExists, DomainNotFound, StoreConflict, VersionConflict


class MemoryStore:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.domains: dict[str, tuple[DomainState, datetime]] = {}
        self.audit: list[AuditEntry] = []
        self.retired_scopes: dict[str, int] = {}
        self.records: dict[str, HostRecord] = {}
        self.hosts: dict[str, HostEntry] = {}
        self.routing = RoutingData()
        self.machines: dict[str, MachineRecord] = {}
        self.incarnations: dict[str, str] = {}
        self.certificates: dict[int, CertificateRecord] = {}
        self.host_grants: dict[tuple[str, str], HostGrant] = {}
        self.tickets: dict[str, TicketRecord] = {}
        self.refusals: dict[str, RefusalWindow] = {}
        self.trusted_signers: dict[str, TrustedSigner] = {}
        self.firmware = FirmwareData()
        self.system = SystemData()
        self.thermal: dict[str, ThermalRecord] = {}
        self.events = EventData()
        self.turns = ThreadTurns()
        #: How many of the next commits lose, as PostgreSQL's losers (``lose_commits``).
        self.losing_commits = 0

    def lose_commits(self, count: int) -> None:
        """The next ``count`` commits raise StoreConflict and roll back, as a transaction
        PostgreSQL aborted (a deadlock, a serialization failure) would."""
        self.losing_commits = count

    def unit_of_work(self) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self)


class _Domains(DomainRepository):
    def __init__(self, data: dict[str, tuple[DomainState, datetime]]) -> None:
        self.data = data

    def get(self, domain_id: str, *, for_update: bool = False) -> DomainState:
        try:
            return self.data[domain_id][0].copy()
        except KeyError:
            raise DomainNotFound(f"no domain {domain_id!r}") from None

    def add(self, state: DomainState, created_at: datetime) -> None:
        if state.domain_id in self.data:
            raise DomainExists(f"domain {state.domain_id!r} exists")
        self.data[state.domain_id] = (state.copy(), created_at)

    def save(self, state: DomainState, expected_version: int) -> None:
        stored, created = self.data.get(state.domain_id, (None, None))
        if stored is None or created is None:
            raise DomainNotFound(f"no domain {state.domain_id!r}")
        if stored.version != expected_version:
            raise VersionConflict(
                f"domain {state.domain_id} is at version {stored.version}, not {expected_version}"
            )
        self.data[state.domain_id] = (state.copy(), created)

    def delete(self, domain_id: str) -> None:
        if self.data.pop(domain_id, None) is None:
            raise DomainNotFound(f"no domain {domain_id!r}")

    def list(self) -> list[DomainSummary]:
        return [
            DomainSummary(d, s.version, c) for d, (s, c) in sorted(self.data.items())
        ]


class _Machines(MachineRepository):
    def __init__(self, data: dict[str, MachineRecord]) -> None:
        self.data = data

    def get(self, domain_id: str, *, for_update: bool = False) -> MachineRecord:
        try:
            return self.data[domain_id]
        except KeyError:
            raise DomainNotFound(f"no domain {domain_id!r}") from None

    def add(self, record: MachineRecord) -> None:
        if record.domain_id in self.data:
            raise DomainExists(f"domain {record.domain_id!r} has a machine")
        self.data[record.domain_id] = record

    def save(self, record: MachineRecord, expected_version: int) -> None:
        stored = self.get(record.domain_id)
        if stored.version != expected_version:
            raise VersionConflict(f"the machine of {record.domain_id} is at version"
                                  f" {stored.version}, not {expected_version}")
        self.data[record.domain_id] = record

    def delete(self, domain_id: str) -> None:
        self.data.pop(domain_id, None)

    def list(self) -> list[MachineRecord]:
        return [record for _, record in sorted(self.data.items())]

    def powered(self) -> builtins.list[MachineRecord]:
        return [record for record in self.list() if record.state is not PowerState.OFF]


class _Audit(AuditLog):
    def __init__(self, entries: list[AuditEntry], retired: dict[str, int]) -> None:
        self.log = entries
        self.retired = retired  # domain -> the last seq its former guest could see

    def append(self, record: AuditRecord) -> AuditEntry:
        prev = self.log[-1].entry_hash if self.log else GENESIS_HASH
        entry = AuditEntry.chain(record, len(self.log) + 1, prev)
        self.log.append(entry)
        return entry

    def entries(self, *, since_seq: int = 1) -> Iterator[AuditEntry]:
        return iter([e for e in self.log if e.seq >= since_seq])

    def recent(self, limit: int) -> list[AuditEntry]:
        return list(self.log[-limit:]) if limit > 0 else []

    def seen_by(self, domain_id: str, limit: int) -> list[SeenEntry]:
        cut = self.retired.get(domain_id, 0)
        seen = [e for e in self.log if visible_to(domain_id, e)
                and (e.seq > cut or scope_of(e.principal, e.domain_id) == HOST_WIDE)]
        numbered = [SeenEntry(number, e) for number, e in enumerate(seen, 1)]
        return numbered[-limit:] if limit > 0 else []

    def retire_scope(self, domain_id: str) -> None:
        self.retired[domain_id] = len(self.log)


class _Refusals(RefusalCounts):
    def __init__(self, data: dict[str, RefusalWindow]) -> None:
        self.data = data

    def windows(self, *, for_update: bool = False) -> list[RefusalWindow]:
        return [window for _, window in sorted(self.data.items())]

    def put(self, window: RefusalWindow) -> None:
        self.data[window.principal] = window

    def remove(self, principal: str) -> None:
        self.data.pop(principal, None)


class _Records(HostRecords):
    def __init__(self, data: dict[str, HostRecord]) -> None:
        self.data = data

    def get(self, key: str, *, for_update: bool = False) -> HostRecord | None:
        return self.data.get(key)

    def put(self, key: str, value: str, updated_at: datetime) -> HostRecord:
        old = self.data.get(key)
        record = HostRecord(key, old.version + 1 if old else 1, value, updated_at)
        self.data[key] = record
        return record

    def hold_shared(self, key: str) -> None:
        """Nothing: a memory unit of work holds the whole store already."""

    def version(self, key: str) -> int | None:
        record = self.data.get(key)
        return None if record is None else record.version


class _Credentials(CredentialRepository):
    def __init__(self, incarnations: dict[str, str],
                 certificates: dict[int, CertificateRecord],
                 tickets: dict[str, TicketRecord]) -> None:
        self.incarnations = incarnations
        self.certificates = certificates
        self.tickets = tickets

    def incarnation(self, domain_id: str) -> str | None:
        return self.incarnations.get(domain_id)

    def set_incarnation(self, domain_id: str, incarnation: str) -> None:
        self.incarnations[domain_id] = incarnation

    def end_incarnation(self, domain_id: str) -> None:
        self.incarnations.pop(domain_id, None)

    def add(self, record: CertificateRecord) -> None:
        if record.serial in self.certificates:
            raise ValueError(f"certificate serial {record.serial_hex} is already recorded")
        self.certificates[record.serial] = record

    def get(self, serial: int) -> CertificateRecord | None:
        return self.certificates.get(serial)

    def issued(self, domain_id: str | None = None) -> list[CertificateRecord]:
        return sorted((r for r in self.certificates.values()
                       if domain_id is None or r.domain_id == domain_id),
                      key=lambda r: (r.issued_at, r.serial))

    def revoke(self, serials: Iterable[int], at: datetime, reason: RevocationReason
               ) -> list[CertificateRecord]:
        done = []
        for serial in sorted(set(serials)):
            record = self.certificates.get(serial)
            if record is not None and not record.revoked:
                record = dataclasses.replace(record, revoked_at=at, reason=reason)
                self.certificates[serial] = record
                done.append(record)
        return done

    def revoked(self) -> list[tuple[int, datetime]]:
        return sorted((r.serial, r.revoked_at) for r in self.certificates.values()
                      if r.revoked_at is not None)

    def add_ticket(self, ticket: TicketRecord) -> None:
        if ticket.nonce in self.tickets:
            raise ValueError("this enrollment nonce is already recorded")
        self.tickets[ticket.nonce] = ticket

    def ticket(self, nonce: str, *, for_update: bool = False) -> TicketRecord | None:
        return self.tickets.get(nonce)

    def use_ticket(self, nonce: str, at: datetime) -> bool:
        found = self.tickets.get(nonce)
        if found is None or found.used_at is not None:
            return False
        self.tickets[nonce] = dataclasses.replace(found, used_at=at)
        return True


class _FirmwareTrust(FirmwareTrustRepository):
    def __init__(self, data: dict[str, TrustedSigner]) -> None:
        self.data = data

    def add(self, signer: TrustedSigner) -> None:
        if signer.fingerprint in self.data:
            raise ValueError(f"signer {signer.fingerprint} is already trusted")
        self.data[signer.fingerprint] = signer

    def get(self, fingerprint: str) -> TrustedSigner | None:
        return self.data.get(fingerprint)

    def remove(self, fingerprint: str) -> bool:
        return self.data.pop(fingerprint, None) is not None

    def list(self) -> list[TrustedSigner]:
        return sorted(self.data.values(), key=lambda s: (s.added_at, s.fingerprint))


class MemoryUnitOfWork(UnitOfWork):
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self._open = False

    def __enter__(self) -> MemoryUnitOfWork:
        self._store.lock.acquire()
        self._open = True
        self.domains = _Domains(dict(self._store.domains))
        self.machines = _Machines(dict(self._store.machines))
        self.audit = _Audit(list(self._store.audit), dict(self._store.retired_scopes))
        self.records = _Records(dict(self._store.records))
        self.hosts = MemoryHosts(dict(self._store.hosts), self.machines.data)
        self.routing = MemoryRouting(self._store.routing.copy())
        self.credentials = _Credentials(dict(self._store.incarnations),
                                        dict(self._store.certificates),
                                        dict(self._store.tickets))
        self.host_grants = MemoryHostGrants(dict(self._store.host_grants))
        self.refusals = _Refusals(dict(self._store.refusals))
        self.firmware_trust = _FirmwareTrust(dict(self._store.trusted_signers))
        self.firmware = MemoryFirmware(self._store.firmware.copy())
        system = self._store.system.copy()  # one copy: the log and the timers share it
        self.sel = MemorySel(system)
        self.timers = MemoryTimers(system)
        self.thermal = MemoryThermal(dict(self._store.thermal))
        self.events = MemoryEvents(self._store.events)
        return self

    def begin_writing(self) -> None:
        """Nothing to take: the memory store's units run one at a time."""

    def commit(self) -> None:
        if self._store.losing_commits > 0:
            self._store.losing_commits -= 1
            self._release()
            raise StoreConflict("the state store is unavailable")
        assert isinstance(self.domains, _Domains) and isinstance(self.audit, _Audit)
        assert isinstance(self.records, _Records) and isinstance(self.machines, _Machines)
        assert isinstance(self.refusals, _Refusals)
        self._store.domains = self.domains.data
        self._store.machines = self.machines.data
        self._store.audit = self.audit.log
        self._store.retired_scopes = self.audit.retired
        self._store.records = self.records.data
        assert isinstance(self.hosts, MemoryHosts)
        self._store.hosts = self.hosts.data
        assert isinstance(self.routing, MemoryRouting)
        self._store.routing = self.routing.data
        assert isinstance(self.credentials, _Credentials)
        self._store.incarnations = self.credentials.incarnations
        self._store.certificates = self.credentials.certificates
        self._store.tickets = self.credentials.tickets
        assert isinstance(self.host_grants, MemoryHostGrants)
        self._store.host_grants = self.host_grants.data
        self._store.refusals = self.refusals.data
        assert isinstance(self.firmware_trust, _FirmwareTrust)
        self._store.trusted_signers = self.firmware_trust.data
        assert isinstance(self.firmware, MemoryFirmware)
        self._store.firmware = self.firmware.data
        assert isinstance(self.sel, MemorySel)
        self._store.system = self.sel.data
        assert isinstance(self.thermal, MemoryThermal)
        self._store.thermal = self.thermal.data
        assert isinstance(self.events, MemoryEvents)
        self._store.events = self.events.committed()
        self._release()

    def rollback(self) -> None:
        self._release()

    def _release(self) -> None:
        if self._open:
            self._open = False
            self._store.lock.release()
