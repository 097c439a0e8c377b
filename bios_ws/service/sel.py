"""Writing a domain's System Event Log: one function per kind of event, each appending in
the caller's unit of work (``uow.sel``), so that an entry lands if and only if the change
it reports is committed.

The writers, and who calls them:

- ``record_power``: a recorded power change (``PowerService._save_power``, and the
  machines' own events in ``MachineObserver.on_event``);
- ``record_restricted_mode``: the host entered or left restricted mode, in every
  domain's log (``IntegrityMonitor``, once per change across workers);
- ``record_revocations``: guest certificates the admin revoked, in their domains' logs
  (``CredentialService``);
- ``record_job_end``: a firmware update job ended (``FirmwareUpdateService.end_failed``,
  ``FirmwareBoot`` when a trial completes or rolls back);
- ``record_watchdog`` and ``record_wake``: the timers (``service.timers``);
- ``record_thermal``: a temperature threshold crossed (the thermal service calls it in
  the unit of work that records the crossing).

A log full under ``NeverOverWrites`` refuses the entry (it is counted as dropped); the
change it reports goes on. Nothing here authorizes: callers already did.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bios_ws.domain import sel
from bios_ws.domain.credentials import CertificateRecord
from bios_ws.domain.firmware_job import FirmwareJob
from bios_ws.domain.hosts import only_here
from bios_ws.domain.ports import UnitOfWork
from bios_ws.domain.power import MachineRecord, PowerState, ResetCause
from bios_ws.domain.sel import SelEntry


def record_power(uow: UnitOfWork, before: MachineRecord, state: PowerState,
                 cause: ResetCause | None, at: datetime) -> SelEntry | None:
    """A power change of ``before``'s machine: a reset (``cause``) or a new state. A state
    recorded again without a reset (a status refresh) logs nothing."""
    if cause is None and state is before.state:
        return None
    return uow.sel.append(before.domain_id, sel.power_changed(
        at, state.value, None if cause is None else cause.value))


def record_restricted_mode(uow: UnitOfWork, entered: bool, summary: str, at: datetime,
                           host: str | None = None) -> int:
    """Host ``host`` entered (or left) restricted mode: an entry in the log of every domain
    whose machine it runs (every domain, for no fleet host); how many logs took it."""
    record = sel.restricted_mode(at, entered, summary)
    return sum(uow.sel.append(machine.domain_id, record) is not None
               for machine in only_here(uow.machines.list(), host))


def record_revocations(uow: UnitOfWork, revoked: Iterable[CertificateRecord],
                       at: datetime) -> int:
    """Each revoked guest certificate in its domain's log (an admin's has no domain)."""
    logged = 0
    for record in revoked:
        if record.domain_id is not None:
            reason = "unspecified" if record.reason is None else record.reason.value
            entry = sel.credential_revoked(at, record.serial_hex, reason)
            logged += uow.sel.append(record.domain_id, entry) is not None
    return logged


def record_job_end(uow: UnitOfWork, job: FirmwareJob) -> SelEntry | None:
    """A firmware update job that ended (Completed, Failed or RolledBack)."""
    return uow.sel.append(job.domain_id, sel.firmware_job_ended(
        job.updated_at, job.job_id, job.state.value, job.fw_version, job.message))


def record_watchdog(uow: UnitOfWork, domain_id: str, timeout_seconds: int, action: str,
                    at: datetime) -> SelEntry | None:
    return uow.sel.append(domain_id, sel.watchdog_expired(at, timeout_seconds, action))


def record_wake(uow: UnitOfWork, domain_id: str, wake_at: str, outcome: str, ok: bool,
                at: datetime) -> SelEntry | None:
    return uow.sel.append(domain_id, sel.wake_alarm(at, wake_at, outcome, ok))


def record_thermal(uow: UnitOfWork, domain_id: str, *, sensor: str, reading_celsius: float,
                   threshold: str, threshold_celsius: float, going_high: bool,
                   at: datetime) -> SelEntry | None:
    """A temperature reading of ``domain_id`` crossed ``threshold`` (``UpperCaution``,
    ``UpperCritical`` or ``UpperFatal``) going high, or back below it. For the thermal
    service: call it in the unit of work that records the crossing (before its commit).
    Severity: Warning above UpperCaution, Critical above UpperCritical and UpperFatal, OK
    back below; EntryCode the Redfish threshold code (``Upper Critical - going high``)."""
    return uow.sel.append(domain_id, sel.temperature_crossed(
        at, sensor, reading_celsius, threshold, threshold_celsius, going_high))
