"""What a domain's firmware update does at the boots of its machine (the machine's hooks).

``plan_slot`` is asked before every boot (``MachineObserver.before_boot``): a job
waiting for this reset (``NeedsReset``, or ``Staged`` to apply at once) becomes
``Running`` and the boot is a *trial* of its slot (not while the host is Untrusted:
the job waits, as pending settings do); otherwise the machine boots its active
slot. ``after_trial`` hears how the trial ended: the firmware reached a boot attempt
(the job ``Completed``, the inventory takes the image's versions and counter, the
floor rises, the active slot flips) or it did not (``RolledBack``; nothing raised;
the machine boots the previous slot). A job still ``Running`` at a
later boot never heard its outcome (the machine or the service stopped during the
trial): it is rolled back there, and by ``roll_back_unreported`` at service start.

Standard library and the ports only; audited as the platform's doing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.firmware import SlotBoot
from bios_ws.domain.firmware_job import (
    ApplyTime,
    FirmwareJob,
    JobState,
    advance,
    complete,
    roll_back,
)
from bios_ws.domain.firmware_update import (
    SYSTEM_FIRMWARE_CLASS,
    AcceptedImage,
    FirmwareInventory,
    bios_version,
    initial_inventory,
    record_update_rolled_back,
    record_update_succeeded,
)
from bios_ws.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bios_ws.errors import ServiceRestricted
from bios_ws.platform.port import TrialOutcome
from bios_ws.service.events import firmware_job_changed
from bios_ws.service.sel import record_job_end

log = logging.getLogger("bios_ws.firmware")
JOB_OPERATION = "FirmwareJob"
_PLATFORM = "admin:platform"
#: PercentComplete of a job whose trial boot has begun.
RUNNING_PERCENT = 60
_WAITING = (JobState.STAGED, JobState.NEEDS_RESET)


class FirmwareBoot:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock,
                 gate: Callable[[], None] | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self._gate = gate

    def plan_slot(self, domain_id: str) -> SlotBoot:
        """The slot the next boot of ``domain_id`` starts from (see the module docstring)."""
        with self._uow() as uow:
            inventory = _inventory(uow, domain_id)
            for job in _unfinished(uow, domain_id):
                if job.state is JobState.RUNNING:
                    inventory = self._roll_back(uow, inventory, job, "the trial boot of slot"
                                                f" {job.slot} never reported an outcome (the"
                                                " machine stopped during it)")
                elif job.state in _WAITING and job.slot is not None and self._trusted():
                    running = self._start(uow, job)
                    uow.commit()
                    assert running.fw_version is not None
                    return SlotBoot(job.slot, bios_version(running.fw_version), trial=True,
                                    expected_sha256=running.image_sha256)
            uow.commit()
        entry = inventory.entry(SYSTEM_FIRMWARE_CLASS)
        assert entry is not None  # every inventory has the system firmware
        return SlotBoot(entry.active_slot, bios_version(entry.fw_version))

    def _trusted(self) -> bool:
        """Whether a new image may be tried now: not while the host is Untrusted (the job
        waits, as pending settings do, and the machine boots its active slot)."""
        if self._gate is None:
            return True
        try:
            self._gate()
        except ServiceRestricted as exc:
            log.warning("a firmware update waits: %s", exc.message)
            return False
        return True

    def after_trial(self, domain_id: str, outcome: TrialOutcome) -> None:
        """Complete or roll back the job whose slot the machine tried."""
        with self._uow() as uow:
            inventory = _inventory(uow, domain_id)
            running = [job for job in _unfinished(uow, domain_id)
                       if job.state is JobState.RUNNING and job.slot is outcome.slot]
            if not running:
                log.warning("domain %s: a trial of slot %s ended (booted: %s) with no job"
                            " running", domain_id, outcome.slot, outcome.booted)
                return
            job = running[0]
            if outcome.booted:
                self._complete(uow, inventory, job)
            else:
                self._roll_back(uow, inventory, job, f"the new image in slot {job.slot} did"
                                f" not reach a boot attempt ({outcome.reason or 'no reason'});"
                                f" slot {outcome.slot.other} boots again")
            uow.commit()

    def roll_back_unreported(self, job_id: str, why: str) -> FirmwareJob | None:
        """Roll back a ``Running`` job whose machine is no longer running (service start)."""
        with self._uow() as uow:
            job = uow.firmware.get_job(job_id, for_update=True)
            if job is None or job.state is not JobState.RUNNING:
                return job
            self._roll_back(uow, _inventory(uow, job.domain_id), job, why)
            uow.commit()
            return uow.firmware.get_job(job_id)

    def _start(self, uow: UnitOfWork, job: FirmwareJob) -> FirmwareJob:
        now = self._clock()
        if job.state is JobState.STAGED and job.apply_time is ApplyTime.ON_RESET:
            job = advance(job, JobState.NEEDS_RESET, at=now, percent=40)
        running = advance(job, JobState.RUNNING, at=now, percent=RUNNING_PERCENT,
                          message=f"the machine boots slot {job.slot} for the first time")
        uow.firmware.save_job(running)
        firmware_job_changed(uow, running)
        self._audit(uow, running)
        return running

    def _complete(self, uow: UnitOfWork, inventory: FirmwareInventory,
                  job: FirmwareJob) -> None:
        entry = inventory.entry(SYSTEM_FIRMWARE_CLASS)
        assert entry is not None
        try:
            updated = record_update_succeeded(entry, _image(job))
        except ValueError as exc:  # the rules changed under the job: never install it
            self._roll_back(uow, inventory, job, f"the image booted but cannot be installed:"
                            f" {exc}")
            return
        uow.firmware.put_inventory(job.domain_id, inventory.replaced(updated))
        done = complete(job, at=self._clock(), message=(
            f"FwVersion {job.fw_version} runs from slot {job.slot}; the lowest supported"
            f" version is {updated.lowest_supported_version}"))
        uow.firmware.save_job(done)
        firmware_job_changed(uow, done)
        self._audit(uow, done)

    def _roll_back(self, uow: UnitOfWork, inventory: FirmwareInventory, job: FirmwareJob,
                   why: str) -> FirmwareInventory:
        entry = inventory.entry(SYSTEM_FIRMWARE_CLASS)
        assert entry is not None
        recorded = inventory.replaced(record_update_rolled_back(entry, _image(job)))
        uow.firmware.put_inventory(job.domain_id, recorded)
        rolled = roll_back(job, why, at=self._clock())
        uow.firmware.save_job(rolled)
        firmware_job_changed(uow, rolled)
        self._audit(uow, rolled)
        log.warning("domain %s: firmware job %s rolled back: %s", job.domain_id, job.job_id,
                    why)
        return recorded

    def _audit(self, uow: UnitOfWork, job: FirmwareJob) -> None:
        if job.finished:  # Completed or RolledBack: in the domain's event log too
            record_job_end(uow, job)
        outcome = "ok" if job.state is not JobState.ROLLED_BACK else "failed:RolledBack"
        uow.audit.append(AuditRecord(job.updated_at, _PLATFORM, JOB_OPERATION, job.domain_id,
                                     outcome, digest_changes({
                                         "job": job.job_id, "state": job.state.value,
                                         "slot": None if job.slot is None else job.slot.value,
                                         "fw_version": job.fw_version,
                                         "message": job.message})))


def _inventory(uow: UnitOfWork, domain_id: str) -> FirmwareInventory:
    return uow.firmware.inventory(domain_id, for_update=True) or initial_inventory()


def _unfinished(uow: UnitOfWork, domain_id: str) -> list[FirmwareJob]:
    """The domain's jobs that have not ended, oldest first."""
    return [job for job in reversed(uow.firmware.jobs(domain_id)) if not job.finished]


def _image(job: FirmwareJob) -> AcceptedImage:
    if (job.firmware_class is None or job.fw_version is None or job.monotonic_count is None
            or job.lowest_supported_version is None):
        raise ValueError(f"firmware job {job.job_id} has no accepted image")
    return AcceptedImage(job.firmware_class, job.fw_version, job.lowest_supported_version,
                         job.monotonic_count)
