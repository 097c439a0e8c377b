"""Firmware update of a domain: its inventory, its history, and a capsule made into a job.

``submit`` is the one way a capsule becomes an update, whether it came in chunks over
SOAP (``FirmwareUploadService``) or from the admin's CLI: the capsule is parsed,
its signature verified against the signers the admin trusts, judged by the
anti-rollback rules (``bios_ws.domain.firmware_update``), its image written to the
inactive slot and read back, and the job left ``NeedsReset`` (apply time OnReset) or
``Running`` at the restart it requests (Immediate). A refused capsule raises its typed
error and is kept in the history as a job that ended ``Failed``, with the domain's
LastAttemptVersion and LastAttemptStatus set; the slots, the floor and the counters
do not change. What happens at the boot is ``bios_ws.service.firmware_boot``.

A guest updates its own domain, the admin any. Updates are refused while the host is
Untrusted. Every outcome is audited.
"""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bios_ws.domain.audit import AuditRecord, digest_changes
from bios_ws.domain.capsule import CapsuleVerifier, UnverifiedCapsule, parse_capsule
from bios_ws.domain.firmware_job import ApplyTime, FirmwareJob, JobState, advance, fail
from bios_ws.domain.firmware_update import (
    FirmwareInventory,
    LastAttemptStatus,
    UpdateDecision,
    attempt_status_of,
    initial_inventory,
    judge_capsule_for,
    record_failed_attempt,
)
from bios_ws.domain.firmware_upload import MAX_CAPSULE_BYTES
from bios_ws.domain.hosts import check_runs_here, only_here
from bios_ws.domain.ports import Clock, DomainTurns, UnitOfWork, UnitOfWorkFactory
from bios_ws.domain.power import MachineKind, PowerState, ResetType, is_running
from bios_ws.domain.principal import Principal, check_domain_id, guest_of
from bios_ws.domain.turns import ThreadTurns
from bios_ws.errors import (
    CapsuleNotTrusted,
    FirmwareUpdateRefused,
    InvalidCapsule,
    MachineError,
    UnknownFirmwareJob,
    UpdateInProgress,
    VbiosError,
)
from bios_ws.platform.port import Platform
from bios_ws.service.audit import audit_refusal
from bios_ws.service.bios import WriteGate, outcome_of
from bios_ws.service.events import firmware_job_changed
from bios_ws.service.firmware_boot import FirmwareBoot
from bios_ws.service.power import PowerService
from bios_ws.service.sel import record_job_end

UPDATE_OPERATION = "UpdateFirmware"
#: How far a job has got when it reaches each state.
PERCENT = {JobState.STAGED: 30, JobState.NEEDS_RESET: 40, JobState.RUNNING: 60}
#: How many jobs a history shows at most.
HISTORY_LIMIT = 100
#: Requests a restart of a domain's machine for an Immediate update (as ``principal``).
RestartRequest = Callable[[Principal, str], None]
#: Which field decided a refusal by the rules.
_DECIDING_FIELD = {LastAttemptStatus.INCORRECT_VERSION: "FwVersion",
                   LastAttemptStatus.AUTH_ERROR: "MonotonicCount",
                   LastAttemptStatus.INVALID_FORMAT: "UpdateImageTypeId"}


@dataclass(frozen=True)
class Submission:
    """A capsule handed over for one domain, by one principal."""

    principal: Principal
    domain_id: str
    capsule: bytes
    apply_time: ApplyTime = ApplyTime.ON_RESET


class FirmwareUpdateService:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock,
                 platforms: Mapping[MachineKind, Platform], verifier: CapsuleVerifier,
                 restart: RestartRequest, gate: WriteGate | None = None,
                 turns: DomainTurns | None = None, host: str | None = None) -> None:
        self._uow = uow
        self._host = host  # the fleet host this process is: it applies to its machines only
        self._turns = turns or ThreadTurns()  # one apply at a time per domain, fleet-wide
        self._clock = clock
        self._platforms = platforms
        self._verifier = verifier
        self._restart = restart
        self._gate = gate

    # -- reading --------------------------------------------------------------------

    def inventory(self, principal: Principal, domain_id: str | None = None
                  ) -> FirmwareInventory:
        """The domain's firmware, as an ESRT lists it (a guest's own; the admin names it)."""
        target = self.target(principal, domain_id)
        with self._uow() as uow:
            uow.domains.get(target)  # DomainNotFound
            return uow.firmware.inventory(target) or initial_inventory()

    def history(self, principal: Principal, domain_id: str | None = None,
                limit: int = HISTORY_LIMIT) -> list[FirmwareJob]:
        """Every update attempt of the domain, newest first."""
        target = self.target(principal, domain_id)
        with self._uow() as uow:
            uow.domains.get(target)
            return uow.firmware.jobs(target, limit=max(1, min(limit, HISTORY_LIMIT)))

    def job(self, principal: Principal, job_id: str | None = None,
            domain_id: str | None = None) -> FirmwareJob:
        """One job by id (a guest's own domain's; the admin's any), or without an id the
        newest job of the domain."""
        if job_id is None:
            found = self.history(principal, domain_id, limit=1)
            if not found:
                raise UnknownFirmwareJob("this domain has no firmware update job yet")
            return found[0]
        with self._uow() as uow:
            job = uow.firmware.get_job(job_id) if _is_job_id(job_id) else None
        if job is None or not _may_see(principal, job.domain_id):
            raise UnknownFirmwareJob(f"no firmware job {job_id[:64]!r} of this caller")
        return job

    @staticmethod
    def target(principal: Principal, domain_id: str | None) -> str:
        """The domain a call acts on: a guest's own, or the one the admin names."""
        if domain_id is None:
            return principal.own_domain()
        principal.require_admin()
        return check_domain_id(domain_id)

    # -- updating -------------------------------------------------------------------

    def submit(self, submission: Submission) -> FirmwareJob:
        """Make ``submission`` an update job, or refuse it (see the module docstring)."""
        principal, domain_id = submission.principal, submission.domain_id
        digest = hashlib.sha256(submission.capsule).hexdigest()
        try:
            if self._gate is not None:
                self._gate()
            with self._uow() as uow:
                uow.domains.get(domain_id)
                machine = uow.machines.get(domain_id)
            check_runs_here(machine, self._host)
            kind = machine.kind
        except VbiosError as exc:
            audit_refusal(self._uow, self._record(principal, domain_id, outcome_of(exc),
                                                  {"capsule_sha256": digest}))
            raise
        with self._turns.turn(domain_id):
            try:
                job = self._accept(submission, digest)
            except VbiosError as exc:
                audit_refusal(self._uow, self._record(principal, domain_id, outcome_of(exc),
                                                      {"capsule_sha256": digest}))
                raise
            return self._stage(job, self._platforms[kind], submission.capsule)

    def _accept(self, submission: Submission, digest: str) -> FirmwareJob:
        """Parse, verify and judge; record a refusal (job Failed) or a Pending job."""
        now = self._clock()
        job = FirmwareJob(uuid.uuid4().hex, submission.domain_id, None, None, None,
                          submission.apply_time, now, now, capsule_sha256=digest,
                          principal=str(submission.principal))
        unverified: UnverifiedCapsule | None = None
        try:
            unverified = parse_capsule(submission.capsule, max_size=MAX_CAPSULE_BYTES)
            job = _claimed(job, unverified)
            with self._uow() as uow:
                anchors = [signer.der for signer in uow.firmware_trust.list()]
            capsule = self._verifier.verify(unverified, anchors, now=now)
        except (InvalidCapsule, CapsuleNotTrusted) as exc:
            self._refuse(job, attempt_status_of(exc), exc.message)
            raise
        job = dataclasses.replace(job, signer=capsule.signer.subject,
                                  image_sha256=hashlib.sha256(capsule.image).hexdigest())
        with self._uow() as uow:
            inventory = self._inventory_for_update(uow, job.domain_id)
            decision = judge_capsule_for(inventory, capsule)
            entry = inventory.entry(capsule.firmware_class)
            if decision.accepted and entry is not None:
                _refuse_if_busy(uow, job.domain_id)
                job = dataclasses.replace(job, slot=entry.inactive_slot,
                                          from_version=entry.fw_version)
                uow.firmware.add_job(job)
                firmware_job_changed(uow, job)
                uow.audit.append(self._record(submission.principal, job.domain_id, "ok",
                                              _facts(job, decision)))
                uow.commit()
                return job
        self._refuse(job, decision.status, decision.message)
        raise FirmwareUpdateRefused(decision.status, decision.message,
                                    field=_DECIDING_FIELD.get(decision.status))

    def _stage(self, job: FirmwareJob, platform: Platform, capsule: bytes) -> FirmwareJob:
        """Write the image to the job's slot, check it, and move the job on."""
        assert job.slot is not None
        image = parse_capsule(capsule, max_size=MAX_CAPSULE_BYTES).image
        try:
            written = platform.stage_firmware(job.domain_id, job.slot, image)
        except MachineError as exc:
            return self.end_failed(job.job_id, LastAttemptStatus.INSUFFICIENT_RESOURCES,
                                   f"the image could not be written to slot {job.slot}:"
                                   f" {exc.message}")
        if written != job.image_sha256:
            return self.end_failed(job.job_id, LastAttemptStatus.UNSUCCESSFUL,
                                   f"slot {job.slot} holds an image with SHA-256 {written}"
                                   f" after the write, not the capsule's {job.image_sha256}")
        staged = self._move(job.job_id, JobState.STAGED,
                            f"the image is in slot {job.slot}, its SHA-256 checked")
        if staged.apply_time is ApplyTime.ON_RESET:
            return self._move(job.job_id, JobState.NEEDS_RESET,
                              "the update is applied at the next reset of the domain")
        try:
            self._restart(_requester(job), job.domain_id)
        except VbiosError as exc:
            return self.end_failed(job.job_id, LastAttemptStatus.UNSUCCESSFUL,
                                   f"the restart an Immediate update needs was refused:"
                                   f" {exc.message}")
        return self.job(Principal.admin("platform"), job.job_id)

    # -- service start ----------------------------------------------------------------

    def resume(self, boot: FirmwareBoot) -> list[str]:
        """No update is left half-applied by a restart of the service: every job that has
        not ended goes on or ends. Lines saying what was done."""
        with self._uow() as uow:
            machines = {record.domain_id: record
                        for record in only_here(uow.machines.list(), self._host)}
            unfinished = [job for job in uow.firmware.unfinished_jobs()
                          if job.domain_id in machines]  # the other hosts resume theirs
            kinds = {job.domain_id: machines[job.domain_id].kind for job in unfinished}
        return [f"{job.domain_id}: firmware job {job.job_id}: {line}" for job in unfinished
                if (line := self._resume(job, self._platforms[kinds[job.domain_id]], boot))]

    def _resume(self, job: FirmwareJob, platform: Platform, boot: FirmwareBoot) -> str:
        if job.state is JobState.PENDING:
            self.end_failed(job.job_id, LastAttemptStatus.UNSUCCESSFUL, "the service stopped"
                            " before the image was written: submit the capsule again")
            return "ended Failed (its image was never written)"
        if job.state is JobState.RUNNING:
            if is_running(platform.status(job.domain_id)):
                return ""  # its machine runs the trial and reports it
            boot.roll_back_unreported(job.job_id, "the machine stopped during the trial boot"
                                      f" of slot {job.slot} (the service restarted)")
            return f"rolled back: slot {job.slot} never reported a boot"
        assert job.slot is not None
        held = platform.firmware_digest(job.domain_id, job.slot)
        if held != job.image_sha256:
            self.end_failed(job.job_id, LastAttemptStatus.UNSUCCESSFUL,
                            f"slot {job.slot} no longer holds the staged image (SHA-256"
                            f" {held or 'of the installation image'}): submit it again")
            return f"ended Failed (slot {job.slot} changed)"
        if job.state is JobState.STAGED and job.apply_time is ApplyTime.ON_RESET:
            self._move(job.job_id, JobState.NEEDS_RESET,
                       "the update is applied at the next reset of the domain")
        elif job.state is JobState.STAGED:
            try:
                self._restart(_requester(job), job.domain_id)
            except VbiosError as exc:
                self.end_failed(job.job_id, LastAttemptStatus.UNSUCCESSFUL,
                                f"the restart an Immediate update needs was refused:"
                                f" {exc.message}")
                return "ended Failed (its restart was refused)"
            return "its restart was requested again"
        return "waits for the next reset"

    def _move(self, job_id: str, state: JobState, message: str) -> FirmwareJob:
        with self._uow() as uow:
            job = _job_for_update(uow, job_id)
            moved = advance(job, state, at=self._clock(), percent=PERCENT[state],
                            message=message)
            uow.firmware.save_job(moved)
            firmware_job_changed(uow, moved)
            uow.commit()
        return moved

    def end_failed(self, job_id: str, status: LastAttemptStatus, message: str
                   ) -> FirmwareJob:
        """End a job Failed (the domain's LastAttempt fields recorded), audited."""
        with self._uow() as uow:
            job = _job_for_update(uow, job_id)
            failed = fail(job, status, message, at=self._clock())
            uow.firmware.save_job(failed)
            firmware_job_changed(uow, failed)
            _record_attempt(uow, failed)
            record_job_end(uow, failed)
            uow.audit.append(AuditRecord(failed.updated_at, "admin:platform", "FirmwareJob",
                                         failed.domain_id, "failed:FirmwareUpdate",
                                         digest_changes(_facts(failed))))
            uow.commit()
        return failed

    def _refuse(self, job: FirmwareJob, status: LastAttemptStatus, message: str) -> None:
        """Keep a refused capsule in the history and on the domain's entry."""
        with self._uow() as uow:
            entry = None if job.firmware_class is None else self._inventory_for_update(
                uow, job.domain_id).entry(job.firmware_class)
            if entry is not None:
                job = dataclasses.replace(job, from_version=entry.fw_version)
            failed = fail(job, status, message, at=self._clock())
            uow.firmware.add_job(failed)
            firmware_job_changed(uow, failed)
            _record_attempt(uow, failed)
            uow.commit()

    def _inventory_for_update(self, uow: UnitOfWork, domain_id: str) -> FirmwareInventory:
        return uow.firmware.inventory(domain_id, for_update=True) or initial_inventory()

    def _record(self, principal: Principal, domain_id: str | None, outcome: str,
                changes: Mapping[str, object]) -> AuditRecord:
        return AuditRecord(self._clock(), str(principal), UPDATE_OPERATION, domain_id,
                           outcome, digest_changes(changes))


def _claimed(job: FirmwareJob, capsule: UnverifiedCapsule) -> FirmwareJob:
    """The job with what the capsule's headers claim (trusted only once verified)."""
    return dataclasses.replace(
        job, firmware_class=capsule.image_header.update_image_type_id,
        fw_version=capsule.payload_header.fw_version,
        lowest_supported_version=capsule.payload_header.lowest_supported_version,
        monotonic_count=capsule.authentication.monotonic_count)


def _record_attempt(uow: UnitOfWork, job: FirmwareJob) -> None:
    """Set LastAttemptVersion/Status of the job's firmware class, when the domain has it."""
    assert job.status is not None
    if job.firmware_class is None or job.fw_version is None:
        return
    inventory = uow.firmware.inventory(job.domain_id, for_update=True) or initial_inventory()
    entry = inventory.entry(job.firmware_class)
    if entry is None:
        return
    recorded = record_failed_attempt(entry, job.fw_version, job.status)
    uow.firmware.put_inventory(job.domain_id, inventory.replaced(recorded))


def _refuse_if_busy(uow: UnitOfWork, domain_id: str) -> None:
    for job in uow.firmware.jobs(domain_id, limit=HISTORY_LIMIT):
        if not job.finished:
            raise UpdateInProgress(f"firmware job {job.job_id} of this domain is {job.state}:"
                                   " one update runs at a time; wait for it to end")


def _job_for_update(uow: UnitOfWork, job_id: str) -> FirmwareJob:
    job = uow.firmware.get_job(job_id, for_update=True)
    if job is None:
        raise UnknownFirmwareJob(f"no firmware job {job_id}")
    return job


def _facts(job: FirmwareJob, decision: UpdateDecision | None = None) -> dict[str, object]:
    facts: dict[str, object] = {
        "job": job.job_id, "state": job.state.value, "fw_version": job.fw_version,
        "from_version": job.from_version, "monotonic_count": job.monotonic_count,
        "slot": None if job.slot is None else job.slot.value, "signer": job.signer,
        "capsule_sha256": job.capsule_sha256}
    if decision is not None:
        facts["decision"] = decision.message
    if job.status is not None:
        facts["status"] = int(job.status)
    return facts


def _requester(job: FirmwareJob) -> Principal:
    """Who the restart of an Immediate update is requested as: the job's requester."""
    guest = guest_of(job.principal)
    if guest is not None:
        return Principal.guest(guest)
    return Principal.admin(job.principal.removeprefix("admin:") or "admin")


def _may_see(principal: Principal, domain_id: str) -> bool:
    try:
        principal.require_admin()
        return True
    except VbiosError:
        return principal.domain_id == domain_id


def _is_job_id(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text)


def restart_for_update(power: PowerService) -> RestartRequest:
    """How an Immediate update asks for its boot: a machine that is off is powered on,
    one that runs is restarted (forcibly: a firmware without OS ignores the power
    button), as the update's requester would ask it."""
    def restart(principal: Principal, domain_id: str) -> None:
        state = power.get_domain_power(Principal.admin("platform"), domain_id).state
        reset = ResetType.ON if state is PowerState.OFF else ResetType.FORCE_RESTART
        if principal.domain_id == domain_id:
            power.reset(principal, reset)
        else:
            power.reset_domain(principal, domain_id, reset)
    return restart
