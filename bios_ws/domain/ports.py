"""Ports: what the use cases need from the outside world, as small abstract classes.

Adapters implement them (``bios_ws.store`` for SQLAlchemy); in-memory fakes
ship beside them in ``bios_ws.domain.fakes`` for tests. The runtime services' ports are
in ``bios_ws.domain.runtime_ports``, re-exported here.
"""

from __future__ import annotations

import builtins

__all__ = [
    "CONFLICT_ATTEMPTS", "AuditLog", "Clock", "CredentialRepository", "DomainRepository",
    "DomainSummary", "EventLog", "FirmwareRepository", "FirmwareTrustRepository",
    "HostRecord", "HostRecords", "MachineRepository", "RefusalCounts", "SelRepository",
    "ThermalRepository", "TimerRepository", "UnitOfWork", "UnitOfWorkFactory",
    "add_retry_listener", "remove_retry_listener", "retry_conflicts", "retrying",
]

import abc
import logging
import random
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TypeVar

from bios_ws.domain.audit import AuditEntry, AuditRecord, SeenEntry
from bios_ws.domain.audit_limit import RefusalWindow
from bios_ws.domain.credentials import (
    CertificateRecord,
    HostGrant,
    RevocationReason,
    TicketRecord,
)
from bios_ws.domain.firmware_trust import TrustedSigner
from bios_ws.domain.hosts import HostRegistry
from bios_ws.domain.power import MachineRecord
from bios_ws.domain.routing import RoutingRepository
from bios_ws.domain.runtime_ports import (
    EventLog,
    FirmwareRepository,
    SelRepository,
    ThermalRepository,
    TimerRepository,
)
from bios_ws.domain.state import DomainState
from bios_ws.errors import StoreConflict


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

    @abc.abstractmethod
    def powered(self) -> builtins.list[MachineRecord]:
        """Every machine whose power state is not Off (as last recorded), by domain id."""


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

    @abc.abstractmethod
    def version(self, key: str) -> int | None:
        """The record's version alone, or None: the cheap read of a per-call check."""

    @abc.abstractmethod
    def hold_shared(self, key: str) -> None:
        """Begin a writing unit holding ``key`` shared until it ends: holders pass each
        other, and a ``get(key, for_update=True)`` waits for them (they for it). On
        PostgreSQL ``FOR SHARE``; on SQLite the database's write lock, as ``for_update``."""


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


class HostGrantRepository(abc.ABC):
    """Which domains each host holding a host certificate may speak for."""

    @abc.abstractmethod
    def granted(self, host: str, domain_id: str) -> bool:
        """Whether ``host`` may speak for ``domain_id``."""

    @abc.abstractmethod
    def list(self, host: str | None = None) -> list[HostGrant]:
        """Every grant (of ``host`` only, if given), by host then domain."""

    @abc.abstractmethod
    def replace(self, host: str, domain_ids: Iterable[str], at: datetime) -> None:
        """``host`` may speak for exactly ``domain_ids`` from ``at`` on (a domain it was
        granted before keeps its grant's time)."""

    @abc.abstractmethod
    def remove_host(self, host: str) -> int:
        """``host`` may speak for no domain any more; how many grants it lost."""

    @abc.abstractmethod
    def remove_domain(self, domain_id: str) -> int:
        """No host may speak for ``domain_id`` any more (it was deleted); how many."""


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


class UnitOfWork(abc.ABC):
    """One transaction. Leaving the block without ``commit()`` rolls back.

    Any of its operations, ``commit`` included, may raise ``StoreConflict``: it lost to a
    concurrent transaction and was rolled back (PostgreSQL). A unit whose work touches
    nothing but the store is run with ``retrying``, which runs it again."""

    domains: DomainRepository
    machines: MachineRepository
    audit: AuditLog
    records: HostRecords
    hosts: HostRegistry
    routing: RoutingRepository
    credentials: CredentialRepository
    host_grants: HostGrantRepository
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
    def begin_writing(self) -> None:
        """Take the store's write lock now. A unit that will write and reads first calls this
        before its first read: SQLite cannot turn a read snapshot into a write once another
        writer has committed after it began (the write fails at once, with no wait)."""

    @abc.abstractmethod
    def commit(self) -> None: ...

    @abc.abstractmethod
    def rollback(self) -> None:
        """Undo what was not committed; a no-op after commit."""


class DomainTurns(abc.ABC):
    """One long operation (a power request, a firmware apply) at a time per domain, across
    every thread, process and host sharing the store. Reentrant within a thread."""

    @abc.abstractmethod
    def turn(self, domain_id: str) -> AbstractContextManager[None]:
        """Wait for the domain's turn; it is held until the block ends."""


UnitOfWorkFactory = Callable[[], UnitOfWork]
Clock = Callable[[], datetime]

# -- running a unit of work again when it lost (``bios_ws.store.retry`` tells why here) ----

T = TypeVar("T")
#: Runs of a unit of work in all (the first and the retries).
CONFLICT_ATTEMPTS = 4
_PAUSE_SECONDS = 0.01
_log = logging.getLogger("bios_ws.store")
#: Called with the number of the run about to start (2 to ``attempts``), before each
#: retry (``server.metrics`` counts them).
_retry_listeners: list[Callable[[int], None]] = []


def retrying(uow: UnitOfWorkFactory, work: Callable[[UnitOfWork], T], *,
             attempts: int = CONFLICT_ATTEMPTS,
             sleep: Callable[[float], None] = time.sleep) -> T:
    """``work`` in a unit of work of its own (it commits, or the unit rolls back), in a
    fresh unit again while the store reports a conflict, ``attempts`` runs at most (then
    the last StoreConflict goes up). ``work`` may only read and write the store through
    ``uow``: no machine action, TPM call or other effect outside the transaction, and no
    state kept from a former run (a run may be rolled back after it ended)."""

    def run() -> T:
        with uow() as unit:
            return work(unit)

    return retry_conflicts(run, attempts, sleep)


def retry_conflicts(work: Callable[[], T], attempts: int = CONFLICT_ATTEMPTS,
                    sleep: Callable[[float], None] = time.sleep) -> T:
    """``work()``, run again while it raises StoreConflict, ``attempts`` times at most
    (then the last StoreConflict goes up), after a short random pause that keeps the
    losers from meeting again. ``work`` must be a whole unit of work."""
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except StoreConflict:
            if attempt == attempts:
                raise
            _log.info("the state store reported a conflict; running the transaction again"
                      " (%d of %d)", attempt + 1, attempts)
            for listener in tuple(_retry_listeners):
                listener(attempt + 1)
            sleep(random.uniform(0, _PAUSE_SECONDS * 2 ** attempt))  # noqa: S311 (no secret)
    raise AssertionError("unreachable")


def add_retry_listener(listener: Callable[[int], None]) -> None:
    """Call ``listener`` before each retry of a unit of work, in this process."""
    _retry_listeners.append(listener)


def remove_retry_listener(listener: Callable[[int], None]) -> None:
    if listener in _retry_listeners:
        _retry_listeners.remove(listener)
