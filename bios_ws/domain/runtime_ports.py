"""The ports of the runtime services (issues 13 and 14): firmware updates, the System
Event Log and timers of system-management requests, thermal state, and events. Part of
``bios_ws.domain.ports`` (which re-exports them and gives them to the unit of work).
"""

from __future__ import annotations

import abc
import builtins
from datetime import datetime

from bios_ws.domain.events import (
    Event,
    EventFilter,
    EventMark,
    EventPage,
    EventRecord,
    Subscription,
)
from bios_ws.domain.firmware_job import FirmwareJob
from bios_ws.domain.firmware_update import FirmwareInventory
from bios_ws.domain.firmware_upload import FirmwareUpload
from bios_ws.domain.sel import SelEntry, SelLog, SelPolicy, SelRecord
from bios_ws.domain.thermal_policy import ThermalRecord
from bios_ws.domain.timers import WakeAlarm, Watchdog


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

    @abc.abstractmethod
    def unsettled(self, ambient: float, within: float) -> builtins.list[ThermalRecord]:
        """Every record, by domain id, but those at Normal, without overrides, and within
        ``within`` degrees of ``ambient`` (the policy's candidates: the rest is settled)."""
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
