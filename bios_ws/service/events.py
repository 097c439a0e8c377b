"""Publishing events: the one way a use case says what changed (docs/events.md).

An event is appended in the unit of work of the change it reports
(``uow.events.append``), so it commits with it or not at all: a reader never sees an
event of a change that was rolled back, nor misses one of a change that committed.
``publish`` takes any event of the registry (``bios_ws.domain.events.MESSAGES``); the
helpers below are what each source calls, one line at the place it saves its change.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bios_ws.domain.credentials import CertificateRecord
from bios_ws.domain.events import Event, EventType, Severity, make_event
from bios_ws.domain.firmware_job import FirmwareJob, JobState
from bios_ws.domain.ports import UnitOfWork
from bios_ws.domain.power import PowerState, ResetCause
from bios_ws.domain.principal import Role

#: The operation of ``BiosService.write`` that applies pending values (any other changes them).
APPLY_OPERATION = "ApplyPendingAttributes"
_ENDED_BADLY = (JobState.FAILED, JobState.ROLLED_BACK)


def publish(uow: UnitOfWork, event_type: EventType, *args: object, domain_id: str | None,
            origin: str, at: datetime, severity: Severity | None = None,
            admin_only: bool = False) -> Event:
    """Append an event in ``uow`` (the transaction of the change it reports)."""
    return uow.events.append(make_event(event_type, *args, domain_id=domain_id, origin=origin,
                                        at=at, severity=severity, admin_only=admin_only))


def domain_origin(domain_id: str, resource: str) -> str:
    return f"/vbios/domains/{domain_id}/{resource}"


def settings_changed(uow: UnitOfWork, operation: str, domain_id: str, version: int,
                     at: datetime) -> Event:
    """A write of the domain's settings state (``BiosService.write``): PendingChangesApplied
    for the apply of a boot, SettingsChanged for any other."""
    kind = (EventType.PENDING_CHANGES_APPLIED if operation == APPLY_OPERATION
            else EventType.SETTINGS_CHANGED)
    return publish(uow, kind, domain_id, operation, version, domain_id=domain_id,
                   origin=domain_origin(domain_id, "Bios"), at=at)


def power_changed(uow: UnitOfWork, domain_id: str, before: PowerState, after: PowerState,
                  cause: ResetCause | None, at: datetime) -> Event | None:
    """A machine's power recorded: an event when its state changed or it was reset."""
    if before is after and cause is None:
        return None
    severity = Severity.WARNING if cause is ResetCause.CRASH else Severity.OK
    return publish(uow, EventType.POWER_STATE_CHANGED, domain_id, after.value, before.value,
                   "none" if cause is None else cause.value, domain_id=domain_id,
                   origin=domain_origin(domain_id, "Power"), at=at, severity=severity)


def integrity_changed(uow: UnitOfWork, trusted: bool, summary: str, at: datetime) -> Event:
    """The host entered (Critical) or left (OK) restricted mode: every guest is told."""
    return publish(uow, EventType.INTEGRITY_CHANGED, "left" if trusted else "entered",
                   summary, domain_id=None, origin="/vbios/host/Integrity", at=at,
                   severity=Severity.OK if trusted else Severity.CRITICAL)


def firmware_job_changed(uow: UnitOfWork, job: FirmwareJob) -> Event:
    """A firmware job recorded in a new state (Warning once Failed or RolledBack)."""
    severity = Severity.WARNING if job.state in _ENDED_BADLY else Severity.OK
    return publish(uow, EventType.FIRMWARE_JOB_CHANGED, job.domain_id, job.job_id,
                   job.state.value, job.message or job.state.value, domain_id=job.domain_id,
                   origin=domain_origin(job.domain_id, f"FirmwareJobs/{job.job_id}"),
                   at=job.updated_at, severity=severity)


def credentials_revoked(uow: UnitOfWork, records: Iterable[CertificateRecord],
                        at: datetime) -> list[Event]:
    """Certificates revoked now: a guest's is its domain's event, an admin's or a host's the
    admin's."""
    return [publish(uow, EventType.CREDENTIAL_REVOKED, record.serial_hex,
                    f"{record.role.value} {record.domain_id or ''}".strip(),
                    record.reason.value if record.reason is not None else "unspecified",
                    domain_id=record.domain_id, admin_only=record.role is not Role.GUEST,
                    origin=f"/vbios/certificates/{record.serial_hex}", at=at)
            for record in records]


def thermal_threshold_crossed(uow: UnitOfWork, domain_id: str, sensor: str, threshold: str,
                              reading: float, at: datetime,
                              severity: Severity = Severity.WARNING) -> Event:
    """A sensor of the domain crossed ``threshold`` (UpperCaution, UpperCritical,
    UpperFatal) with ``reading`` degrees Celsius."""
    return publish(uow, EventType.THERMAL_THRESHOLD_CROSSED, domain_id, sensor, threshold,
                   f"{reading:g}", domain_id=domain_id,
                   origin=domain_origin(domain_id, f"Thermal/{sensor}"), at=at,
                   severity=severity)
