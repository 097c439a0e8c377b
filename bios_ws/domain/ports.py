"""Ports: what the use cases need from the outside world, as small abstract classes.

Adapters implement them (``bios_ws.store`` for SQLAlchemy); in-memory fakes
ship beside them in ``bios_ws.domain.fakes`` for tests.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType

from bios_ws.domain.audit import AuditEntry, AuditRecord, SeenEntry
from bios_ws.domain.audit_limit import RefusalWindow
from bios_ws.domain.credentials import CertificateRecord, RevocationReason, TicketRecord
from bios_ws.domain.events import (
    Event,
    EventFilter,
    EventMark,
    EventPage,
    EventRecord,
    Subscription,
)
from bios_ws.domain.firmware_job import FirmwareJob
from bios_ws.domain.firmware_trust import TrustedSigner
from bios_ws.domain.firmware_update import FirmwareInventory
from bios_ws.domain.firmware_upload import FirmwareUpload
from bios_ws.domain.power import MachineRecord
from bios_ws.domain.sel import SelEntry, SelLog, SelPolicy, SelRecord
from bios_ws.domain.state import DomainState
from bios_ws.domain.thermal_policy import ThermalRecord
from bios_ws.domain.timers import WakeAlarm, Watchdog


@dataclass(frozen=True)
class DomainSummary:
    domain_id: str
    version: int
    created_at: datetime


class DomainRepository(abc.ABC):
    @abc.abstractmethod
    def get(self, domain_id: str, *, for_update: bool = False) -> DomainState:
        """The stored state; DomainNotFound if none. ``for_update`` locks it until commit."""

    @abc.abstractmethod
    def add(self, state: DomainState, created_at: datetime) -> None:
        """Store a new domain; DomainExists if the id is taken."""

    @abc.abstractmethod
    def save(self, state: DomainState, expected_version: int) -> None:
        """Replace the stored state if its version is still ``expected_version``,
        else raise VersionConflict (compare and set)."""

    @abc.abstractmethod
    def delete(self, domain_id: str) -> None:
        """Remove a domain; DomainNotFound if none."""

    @abc.abstractmethod
    def list(self) -> list[DomainSummary]:
        """Every domain, ordered by id."""


class MachineRepository(abc.ABC):
    """Each domain's machine record (kind and power), kept apart from its settings."""

    @abc.abstractmethod
    def get(self, domain_id: str, *, for_update: bool = False) -> MachineRecord:
        """The record; DomainNotFound if none. ``for_update`` locks it until commit."""

    @abc.abstractmethod
    def add(self, record: MachineRecord) -> None:
        """Store the machine of a new domain; DomainExists if it has one."""

    @abc.abstractmethod
    def save(self, record: MachineRecord, expected_version: int) -> None:
        """Replace the record if its version is still ``expected_version``, else
        VersionConflict."""

    @abc.abstractmethod
    def delete(self, domain_id: str) -> None:
        """Remove the record (nothing if there is none)."""

    @abc.abstractmethod
    def list(self) -> list[MachineRecord]:
        """Every machine, ordered by domain id."""


@dataclass(frozen=True)
class HostRecord:
    """A host-wide document (e.g. the reference measurements), versioned from 1."""

    key: str
    version: int
    value: str
    updated_at: datetime


class HostRecords(abc.ABC):
    """Small host-wide documents every worker shares, by key."""

    @abc.abstractmethod
    def get(self, key: str, *, for_update: bool = False) -> HostRecord | None:
        """The record, or None; ``for_update`` locks it (and the unit) until commit."""

    @abc.abstractmethod
    def put(self, key: str, value: str, updated_at: datetime) -> HostRecord:
        """Create or replace the record; its version goes up by one."""


class AuditLog(abc.ABC):
    @abc.abstractmethod
    def append(self, record: AuditRecord) -> AuditEntry:
        """Number and chain ``record`` after the last entry, and store it."""

    @abc.abstractmethod
    def entries(self, *, since_seq: int = 1) -> Iterator[AuditEntry]:
        """Entries in sequence order."""

    @abc.abstractmethod
    def recent(self, limit: int) -> list[AuditEntry]:
        """The last ``limit`` entries, in sequence order."""

    @abc.abstractmethod
    def seen_by(self, domain_id: str, limit: int) -> list[SeenEntry]:
        """The last ``limit`` entries the guest of ``domain_id`` may see (``audit.visible_to``),
        in sequence order, however many others were written: each numbered among all the
        entries that guest may see. Indexed: the cost does not grow with others' entries."""

    @abc.abstractmethod
    def retire_scope(self, domain_id: str) -> None:
        """The domain is deleted: the entries its guest could see stay in the log but no
        guest sees them any more (a domain created again under that name is another)."""


class RefusalCounts(abc.ABC):
    """The open refusal windows of the audit log's limit (``audit_limit``), by principal."""

    @abc.abstractmethod
    def windows(self, *, for_update: bool = False) -> list[RefusalWindow]:
        """Every open window; ``for_update`` locks them, and the audit log, until commit."""

    @abc.abstractmethod
    def put(self, window: RefusalWindow) -> None:
        """Create or replace the window of ``window.principal``."""

    @abc.abstractmethod
    def remove(self, principal: str) -> None:
        """Close the principal's window (nothing if it has none)."""


class CredentialRepository(abc.ABC):
    """The client certificates issued, and each domain's current incarnation."""

    @abc.abstractmethod
    def incarnation(self, domain_id: str) -> str | None:
        """The current incarnation of ``domain_id``, or None when it has none (deleted)."""

    @abc.abstractmethod
    def set_incarnation(self, domain_id: str, incarnation: str) -> None:
        """Start a new incarnation of ``domain_id`` (replacing any former one)."""

    @abc.abstractmethod
    def end_incarnation(self, domain_id: str) -> None:
        """The domain is gone: it has no incarnation (nothing if it had none)."""

    @abc.abstractmethod
    def add(self, record: CertificateRecord) -> None:
        """Record an issued certificate; ValueError if its serial is taken."""

    @abc.abstractmethod
    def get(self, serial: int) -> CertificateRecord | None: ...

    @abc.abstractmethod
    def issued(self, domain_id: str | None = None) -> list[CertificateRecord]:
        """Every recorded certificate (of ``domain_id`` only, if given), oldest first."""

    @abc.abstractmethod
    def revoke(self, serials: Iterable[int], at: datetime, reason: RevocationReason
               ) -> list[CertificateRecord]:
        """Mark the certificates revoked; those that were not revoked before, as now."""

    @abc.abstractmethod
    def revoked(self) -> list[tuple[int, datetime]]:
        """(serial, revocation time) of every revoked certificate, by serial."""

    @abc.abstractmethod
    def add_ticket(self, ticket: TicketRecord) -> None:
        """Record a bootstrap URI made for a domain; ValueError if its nonce is taken."""

    @abc.abstractmethod
    def ticket(self, nonce: str, *, for_update: bool = False) -> TicketRecord | None: ...

    @abc.abstractmethod
    def use_ticket(self, nonce: str, at: datetime) -> bool:
        """Mark the ticket used unless it was; whether this call marked it."""


class FirmwareTrustRepository(abc.ABC):
    """The signer certificates the admin trusts for capsules, by SHA-256 fingerprint."""

    @abc.abstractmethod
    def add(self, signer: TrustedSigner) -> None:
        """Trust ``signer``; ValueError if its fingerprint is already trusted."""

    @abc.abstractmethod
    def get(self, fingerprint: str) -> TrustedSigner | None: ...

    @abc.abstractmethod
    def remove(self, fingerprint: str) -> bool:
        """Trust it no more; whether it was trusted."""

    @abc.abstractmethod
    def list(self) -> list[TrustedSigner]:
        """Every trusted signer, oldest first (then by fingerprint)."""


class FirmwareRepository(abc.ABC):
    """Each domain's firmware inventory, its update jobs (its history) and open uploads,
    and the one-time client keys encrypted uploads have used."""

    @abc.abstractmethod
    def inventory(self, domain_id: str, *, for_update: bool = False
                  ) -> FirmwareInventory | None:
        """The domain's inventory, or None until one was put (the domain then has the
        ``initial_inventory``)."""

    @abc.abstractmethod
    def put_inventory(self, domain_id: str, inventory: FirmwareInventory) -> None:
        """Store the domain's inventory (replacing any)."""

    @abc.abstractmethod
    def add_job(self, job: FirmwareJob) -> None:
        """Record a new job; ValueError if its id exists."""

    @abc.abstractmethod
    def get_job(self, job_id: str, *, for_update: bool = False) -> FirmwareJob | None: ...

    @abc.abstractmethod
    def save_job(self, job: FirmwareJob) -> None:
        """Replace the job of ``job.job_id``; KeyError if there is none."""

    @abc.abstractmethod
    def jobs(self, domain_id: str, *, limit: int = 100) -> list[FirmwareJob]:
        """The domain's jobs, newest first (by creation time, then id), at most ``limit``."""

    @abc.abstractmethod
    def unfinished_jobs(self) -> list[FirmwareJob]:
        """Every job of every domain that has not ended, oldest first."""

    @abc.abstractmethod
    def add_upload(self, upload: FirmwareUpload) -> None:
        """Record a new upload; ValueError if its id exists."""

    @abc.abstractmethod
    def get_upload(self, upload_id: str, *, for_update: bool = False
                   ) -> FirmwareUpload | None: ...

    @abc.abstractmethod
    def save_upload(self, upload: FirmwareUpload, expected_received: int) -> bool:
        """Replace the upload if it still has ``expected_received`` bytes; whether it did."""

    @abc.abstractmethod
    def remove_upload(self, upload_id: str) -> bool:
        """Forget the upload and its chunks; whether there was one."""

    @abc.abstractmethod
    def add_chunk(self, upload_id: str, offset: int, data: bytes) -> None:
        """Keep a chunk of the upload's bytes at ``offset``; ValueError if one starts there."""

    @abc.abstractmethod
    def read_chunks(self, upload_id: str) -> bytes:
        """The upload's chunks, concatenated in the order of their offsets."""

    @abc.abstractmethod
    def uploads(self, domain_id: str | None = None) -> list[FirmwareUpload]:
        """The open uploads (of one domain, or all), oldest first."""

    @abc.abstractmethod
    def use_transfer_key(self, fingerprint: str, at: datetime) -> bool:
        """Record that a client one-time public key (its SHA-256, hex) was used; False if
        it had been (a replay), True the first time."""

    @abc.abstractmethod
    def forget_domain(self, domain_id: str) -> None:
        """Remove the domain's inventory, jobs and uploads (the domain is deleted)."""


class SelRepository(abc.ABC):
    """Each domain's System Event Log, a ring kept by ``bios_ws.domain.sel.plan_append``.
    A domain without a log has the default policy and no entries."""

    @abc.abstractmethod
    def append(self, domain_id: str, record: SelRecord) -> SelEntry | None:
        """Add an entry (the oldest go first when the ring wraps); None when the log is
        full and never overwrites (the entry is counted as dropped)."""

    @abc.abstractmethod
    def log(self, domain_id: str) -> SelLog:
        """The log's policy and counts."""

    @abc.abstractmethod
    def entries(self, domain_id: str) -> list[SelEntry]:
        """Every entry, oldest first (by Id)."""

    @abc.abstractmethod
    def clear(self, domain_id: str) -> int:
        """Remove every entry (Ids go on from the last one); how many there were."""

    @abc.abstractmethod
    def set_policy(self, domain_id: str, policy: SelPolicy) -> int:
        """Take ``policy`` (a smaller ring keeps the newest entries); how many went."""

    @abc.abstractmethod
    def forget_domain(self, domain_id: str) -> None:
        """Remove the domain's log and entries (the domain is deleted)."""


class TimerRepository(abc.ABC):
    """Each domain's wake alarm and watchdog (``bios_ws.domain.timers``), versioned: the one
    who fires one claims it by compare-and-set on its version."""

    @abc.abstractmethod
    def alarm(self, domain_id: str, *, for_update: bool = False) -> WakeAlarm | None:
        """The domain's alarm; ``for_update`` begins a writing unit (locks it)."""

    @abc.abstractmethod
    def put_alarm(self, alarm: WakeAlarm) -> WakeAlarm:
        """Set the domain's alarm (replacing any); the stored one (its version moved on)."""

    @abc.abstractmethod
    def remove_alarm(self, domain_id: str, expected_version: int | None = None) -> bool:
        """Remove the alarm (if still at ``expected_version``, when given); whether this
        call removed it."""

    @abc.abstractmethod
    def due_alarms(self, now: datetime) -> list[WakeAlarm]:
        """The alarms whose time has come, oldest time first."""

    @abc.abstractmethod
    def watchdog(self, domain_id: str, *, for_update: bool = False) -> Watchdog | None:
        """The domain's watchdog; ``for_update`` begins a writing unit (locks it)."""

    @abc.abstractmethod
    def save_watchdog(self, watchdog: Watchdog, expected_version: int | None) -> bool:
        """Store ``watchdog``: new (``expected_version`` None: none may exist) or replacing
        the one still at ``expected_version``; whether it was stored."""

    @abc.abstractmethod
    def armed_watchdogs(self) -> list[Watchdog]:
        """Every enabled watchdog, by domain id."""

    @abc.abstractmethod
    def forget_domain(self, domain_id: str) -> None:
        """Remove the domain's alarm and watchdog (the domain is deleted)."""
class ThermalRepository(abc.ABC):
    """Each domain's thermal state, changed by compare-and-set on its version (several
    processes evaluate the policy)."""

    @abc.abstractmethod
    def get(self, domain_id: str) -> ThermalRecord | None:
        """The domain's record, or None until one was added."""

    @abc.abstractmethod
    def add(self, record: ThermalRecord) -> bool:
        """Store the first record of a domain; False if it has one already."""

    @abc.abstractmethod
    def save(self, record: ThermalRecord, expected_version: int) -> bool:
        """Replace the record if it is still at ``expected_version``; whether it was."""

    @abc.abstractmethod
    def delete(self, domain_id: str) -> None:
        """Forget the domain's record (nothing if it has none)."""

    @abc.abstractmethod
    def list(self) -> list[ThermalRecord]:
        """Every record, by domain id."""
class EventLog(abc.ABC):
    """The events (numbered at append, in commit order: ``bios_ws.domain.events``) and the
    subscriptions that read them. Writers only append; readers never hold them up."""

    @abc.abstractmethod
    def append(self, record: EventRecord) -> Event:
        """Store ``record`` with the next id: greater than every id before, and committed
        in the order of the ids (no reader sees an id before a smaller one commits)."""

    @abc.abstractmethod
    def after(self, cursor: int, wanted: EventFilter, limit: int) -> EventPage:
        """The first ``limit`` events after ``cursor`` that ``wanted`` admits, in id order,
        and the cursor to read after next (one snapshot)."""

    @abc.abstractmethod
    def marks_after(self, cursor: int, limit: int) -> list[EventMark]:
        """Scope and type of the first ``limit`` events after ``cursor`` (to wake readers)."""

    @abc.abstractmethod
    def head(self) -> int:
        """The id of the newest event ever appended that a reader may have seen (0 for
        none): never less than the id of an event removed by ``prune``."""

    @abc.abstractmethod
    def pruned_through(self) -> int:
        """The largest id ``prune`` removed (0 if none): a cursor before it missed events."""

    @abc.abstractmethod
    def prune(self, older_than: datetime, keep: int) -> int:
        """Remove the events older than ``older_than`` and all but the newest ``keep``;
        how many were removed."""

    @abc.abstractmethod
    def retire_domain(self, domain_id: str) -> None:
        """The domain is deleted: its events stay for the admin's subscriptions to every
        domain (no guest sees them any more) and its subscriptions end."""

    @abc.abstractmethod
    def add_subscription(self, subscription: Subscription) -> None:
        """Record a new subscription; ValueError if its id exists."""

    @abc.abstractmethod
    def subscription(self, subscription_id: str) -> Subscription | None: ...

    @abc.abstractmethod
    def save_subscription(self, subscription: Subscription) -> bool:
        """Replace the subscription of that id; whether there was one."""

    @abc.abstractmethod
    def remove_subscription(self, subscription_id: str) -> bool:
        """End it; whether there was one."""

    @abc.abstractmethod
    def remove_subscriptions_expired(self, before: datetime) -> int:
        """End the subscriptions that expired before ``before``; how many."""

    @abc.abstractmethod
    def subscriptions(self) -> list[Subscription]:
        """Every subscription, oldest first (then by id)."""


class UnitOfWork(abc.ABC):
    """One transaction. Leaving the block without ``commit()`` rolls back."""

    domains: DomainRepository
    machines: MachineRepository
    audit: AuditLog
    records: HostRecords
    credentials: CredentialRepository
    firmware_trust: FirmwareTrustRepository
    firmware: FirmwareRepository
    thermal: ThermalRepository
    refusals: RefusalCounts
    sel: SelRepository
    timers: TimerRepository
    events: EventLog

    def __enter__(self) -> UnitOfWork:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.rollback()

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None:
        """Undo what was not committed; a no-op after commit."""


UnitOfWorkFactory = Callable[[], UnitOfWork]
Clock = Callable[[], datetime]
