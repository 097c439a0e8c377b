"""Firmware updates through the use cases, in-process: real signed capsules, simulated
machines that boot a firmware volume and refuse anything else, the inventory, the jobs and
the slots; every refusal leaves the slots, the floor and the counters as they were."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization

from bios_ws.domain.firmware_job import ApplyTime, FirmwareJob, JobState, advance
from bios_ws.domain.firmware_update import (
    SYSTEM_FIRMWARE_CLASS,
    FirmwareEntry,
    LastAttemptStatus,
    Slot,
)
from bios_ws.domain.principal import Principal
from bios_ws.errors import (
    AccessDenied,
    CapsuleNotTrusted,
    FirmwareUpdateRefused,
    InvalidCapsule,
    ServiceRestricted,
    UnknownFirmwareJob,
    UpdateInProgress,
)
from bios_ws.service.firmware_trust import FirmwareTrustService
from bios_ws.service.firmware_update import FirmwareUpdateService, Submission
from bios_ws.soap.testing import Endpoint, build_endpoint
from tests.firmware_support import (
    Signers,
    broken_image,
    capsule,
    firmware_volume,
    make_signers,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def signers() -> Signers:
    return make_signers(NOW)


@pytest.fixture
def ep(signers: Signers) -> Endpoint:
    endpoint = build_endpoint()
    endpoint.clock.moment = NOW
    endpoint.use_cases.use(FirmwareTrustService).add(
        endpoint.admin, signers.root.certificate.public_bytes(serialization.Encoding.PEM))
    return endpoint


def updates(ep: Endpoint) -> FirmwareUpdateService:
    return ep.use_cases.use(FirmwareUpdateService)


def submit(ep: Endpoint, data: bytes, *, apply_time: ApplyTime = ApplyTime.ON_RESET,
           principal: Principal | None = None) -> FirmwareJob:
    return updates(ep).submit(Submission(principal or ep.guest, "vm1", data, apply_time))


def entry(ep: Endpoint) -> FirmwareEntry:
    found = updates(ep).inventory(ep.guest).entry(SYSTEM_FIRMWARE_CLASS)
    assert found is not None
    return found


def boot(ep: Endpoint) -> None:
    """Power the machine on (or restart it) and let it boot to its firmware's end."""
    ep.power.reset_domain(ep.admin, "vm1", _reset_type(ep))
    for _ in range(4):
        ep.clock.advance(ep.platform.boot_seconds)
        ep.platform.advance_due()


def _reset_type(ep: Endpoint) -> object:
    from bios_ws.domain.power import PowerState, ResetType

    off = ep.platform.status("vm1") is PowerState.OFF
    return ResetType.ON if off else ResetType.FORCE_RESTART


def slots(ep: Endpoint) -> tuple[str | None, str | None]:
    return (ep.platform.firmware_digest("vm1", Slot.A),
            ep.platform.firmware_digest("vm1", Slot.B))


# --- the inventory --------------------------------------------------------------------------

def test_a_new_domain_has_its_system_firmware_at_version_1_in_slot_a(ep: Endpoint) -> None:
    first = entry(ep)
    assert (first.fw_version, first.lowest_supported_version, first.active_slot) == (1, 1,
                                                                                       Slot.A)
    assert first.last_attempt_status is LastAttemptStatus.SUCCESS
    assert first.last_monotonic_count is None
    assert updates(ep).history(ep.guest) == []


def test_the_admin_names_the_domain_and_a_guest_cannot(ep: Endpoint) -> None:
    assert updates(ep).inventory(ep.admin, "vm1") == updates(ep).inventory(ep.guest)
    with pytest.raises(AccessDenied):
        updates(ep).inventory(ep.guest, "vm1")
    with pytest.raises(AccessDenied):
        updates(ep).inventory(ep.admin)


# --- an update that boots -------------------------------------------------------------------

def test_an_update_is_staged_then_tried_and_completed_at_the_next_reset(
        ep: Endpoint, signers: Signers) -> None:
    data = capsule(signers, 3, lowest=2, count=5)
    job = submit(ep, data)
    assert (job.state, job.percent_complete, job.slot) == (JobState.NEEDS_RESET, 40, Slot.B)
    assert job.from_version == 1 and job.fw_version == 3 and job.signer == "CN=Update Signer"
    assert job.capsule_sha256 == hashlib.sha256(data).hexdigest()
    assert slots(ep) == (None, job.image_sha256)
    assert entry(ep).fw_version == 1  # nothing changes before the boot
    boot(ep)
    done = updates(ep).job(ep.guest, job.job_id)
    assert (done.state, done.percent_complete, done.status) == (
        JobState.COMPLETED, 100, LastAttemptStatus.SUCCESS)
    after = entry(ep)
    assert (after.fw_version, after.lowest_supported_version, after.last_monotonic_count,
            after.active_slot) == (3, 2, 5, Slot.B)
    assert b"vbios-3" in ep.platform.console("vm1")


def test_the_floor_only_rises_and_a_lower_version_above_it_is_allowed(
        ep: Endpoint, signers: Signers) -> None:
    submit(ep, capsule(signers, 5, lowest=2, count=1))
    boot(ep)
    job = submit(ep, capsule(signers, 3, lowest=1, count=2))  # downgrade, floor 2 kept
    boot(ep)
    assert updates(ep).job(ep.guest, job.job_id).state is JobState.COMPLETED
    after = entry(ep)
    assert (after.fw_version, after.lowest_supported_version, after.active_slot) == (3, 2,
                                                                                      Slot.A)


def test_reinstalling_the_same_version_with_a_greater_count_is_allowed(
        ep: Endpoint, signers: Signers) -> None:
    submit(ep, capsule(signers, 2, count=1))
    boot(ep)
    job = submit(ep, capsule(signers, 2, count=2))
    boot(ep)
    assert updates(ep).job(ep.guest, job.job_id).state is JobState.COMPLETED
    assert entry(ep).last_monotonic_count == 2


def test_immediate_powers_an_off_machine_on_and_tries_the_image(
        ep: Endpoint, signers: Signers) -> None:
    job = submit(ep, capsule(signers, 2), apply_time=ApplyTime.IMMEDIATE)
    for _ in range(4):
        ep.clock.advance(ep.platform.boot_seconds)
        ep.platform.advance_due()
    assert updates(ep).job(ep.guest, job.job_id).state is JobState.COMPLETED
    assert entry(ep).fw_version == 2


# --- an update that does not boot rolls back by itself --------------------------------------

def test_a_broken_image_rolls_back_and_nothing_is_raised(ep: Endpoint, signers: Signers) -> None:
    job = submit(ep, capsule(signers, 4, lowest=4, count=9, image=broken_image()))
    boot(ep)
    rolled = updates(ep).job(ep.guest, job.job_id)
    assert rolled.state is JobState.ROLLED_BACK
    assert rolled.status is LastAttemptStatus.UNSUCCESSFUL
    assert "did not reach a boot attempt" in rolled.message
    after = entry(ep)
    assert (after.fw_version, after.lowest_supported_version, after.last_monotonic_count,
            after.active_slot) == (1, 1, None, Slot.A)
    assert (after.last_attempt_version, after.last_attempt_status) == (
        4, LastAttemptStatus.UNSUCCESSFUL)
    from bios_ws.domain.power import PowerState

    assert ep.platform.status("vm1") is PowerState.ON  # slot A booted again
    assert b"vbios-1" in ep.platform.console("vm1")


# --- refusals change only LastAttempt* ------------------------------------------------------

def _refused_unchanged(ep: Endpoint, data: bytes, error: type[Exception],
                       status: LastAttemptStatus | None) -> None:
    before, held = entry(ep), slots(ep)
    with pytest.raises(error):
        submit(ep, data)
    after = entry(ep)
    assert slots(ep) == held
    assert (after.fw_version, after.lowest_supported_version, after.last_monotonic_count,
            after.active_slot) == (before.fw_version, before.lowest_supported_version,
                                   before.last_monotonic_count, before.active_slot)
    last = updates(ep).history(ep.guest)[0]
    assert last.state is JobState.FAILED
    if last.fw_version is not None:  # the capsule's headers were read
        assert last.from_version == before.fw_version
    if status is not None:
        assert last.status is status and after.last_attempt_status is status


@pytest.fixture
def updated(ep: Endpoint, signers: Signers) -> Endpoint:
    """The domain at FwVersion 5, floor 4, MonotonicCount 10, slot B."""
    submit(ep, capsule(signers, 5, lowest=4, count=10))
    boot(ep)
    return ep


def test_below_the_floor_is_refused_naming_fw_version(updated: Endpoint,
                                                      signers: Signers) -> None:
    _refused_unchanged(updated, capsule(signers, 3, lowest=1, count=11), FirmwareUpdateRefused,
                       LastAttemptStatus.INCORRECT_VERSION)
    with pytest.raises(FirmwareUpdateRefused) as refused:
        submit(updated, capsule(signers, 3, lowest=1, count=12))
    assert refused.value.attribute == "FwVersion" and "below the lowest" in refused.value.message


@pytest.mark.parametrize("count", [10, 9, 0])
def test_a_count_not_above_the_last_is_refused(updated: Endpoint, signers: Signers,
                                               count: int) -> None:
    _refused_unchanged(updated, capsule(signers, 6, count=count), FirmwareUpdateRefused,
                       LastAttemptStatus.AUTH_ERROR)


def test_a_replayed_capsule_is_refused(ep: Endpoint, signers: Signers) -> None:
    data = capsule(signers, 2, count=3)
    submit(ep, data)
    boot(ep)
    _refused_unchanged(ep, data, FirmwareUpdateRefused, LastAttemptStatus.AUTH_ERROR)


def test_another_firmware_class_is_refused(updated: Endpoint, signers: Signers) -> None:
    other = capsule(signers, 6, count=11, firmware_class=uuid.UUID(int=7))
    before = entry(updated)
    with pytest.raises(FirmwareUpdateRefused) as refused:
        submit(updated, other)
    assert refused.value.attribute == "UpdateImageTypeId"
    assert entry(updated) == before  # not its attempt: nothing recorded on the entry


def test_an_untrusted_signer_is_refused(updated: Endpoint, signers: Signers) -> None:
    _refused_unchanged(updated, capsule(signers, 6, count=11, stranger=True),
                       CapsuleNotTrusted, LastAttemptStatus.AUTH_ERROR)


def test_a_tampered_image_is_refused(updated: Endpoint, signers: Signers) -> None:
    data = bytearray(capsule(signers, 6, count=11))
    data[-100] ^= 1
    _refused_unchanged(updated, bytes(data), CapsuleNotTrusted, LastAttemptStatus.AUTH_ERROR)


@pytest.mark.parametrize("cut", [10, 40, 200, -1])
def test_a_truncated_capsule_is_refused(updated: Endpoint, signers: Signers, cut: int) -> None:
    data = capsule(signers, 6, count=11)
    _refused_unchanged(updated, data[:cut], InvalidCapsule, None)


def test_an_update_in_progress_refuses_a_second(ep: Endpoint, signers: Signers) -> None:
    submit(ep, capsule(signers, 2, count=1))
    with pytest.raises(UpdateInProgress):
        submit(ep, capsule(signers, 3, count=2))


def test_updates_are_refused_while_the_host_is_untrusted(ep: Endpoint,
                                                         signers: Signers) -> None:
    from bios_ws.domain.power import MachineKind
    from bios_ws.firmware import Pkcs7CapsuleVerifier

    def untrusted() -> None:
        raise ServiceRestricted("the host is Untrusted")

    def no_restart(principal: Principal, domain_id: str) -> None:
        raise AssertionError("no restart")

    gated = FirmwareUpdateService(ep.store.unit_of_work, ep.clock.now,
                                  {MachineKind.SIMULATED: ep.platform},
                                  Pkcs7CapsuleVerifier(), no_restart, gate=untrusted)
    with pytest.raises(ServiceRestricted):
        gated.submit(Submission(ep.guest, "vm1", capsule(signers, 2)))
    assert slots(ep) == (None, None)
    assert updates(ep).history(ep.guest) == []


# --- who sees what --------------------------------------------------------------------------

def test_a_guest_sees_only_its_own_jobs(ep: Endpoint, signers: Signers) -> None:
    job = submit(ep, capsule(signers, 2))
    assert updates(ep).job(ep.admin, job.job_id) == job
    assert updates(ep).job(ep.guest) == job  # the newest
    with pytest.raises(UnknownFirmwareJob):
        updates(ep).job(Principal.guest("vm2"), job.job_id)
    with pytest.raises(UnknownFirmwareJob):
        updates(ep).job(ep.guest, "0" * 32)


# --- a restart of the service ---------------------------------------------------------------

def test_a_running_trial_whose_machine_stopped_is_rolled_back_at_start(
        ep: Endpoint, signers: Signers) -> None:
    """The service and the machine stopped during the trial (nothing reported it): the
    store says Running, the machine is off."""
    job = submit(ep, capsule(signers, 2))
    with ep.store.unit_of_work() as uow:
        uow.firmware.save_job(advance(job, JobState.RUNNING, at=NOW, percent=60))
        uow.commit()
    lines = updates(ep).resume(ep.observer.firmware)
    assert lines == [f"vm1: firmware job {job.job_id}: rolled back: slot B never reported a"
                     " boot"]
    rolled = updates(ep).job(ep.guest, job.job_id)
    assert rolled.state is JobState.ROLLED_BACK and "service restarted" in rolled.message
    assert entry(ep).active_slot is Slot.A
    assert entry(ep).last_attempt_status is LastAttemptStatus.UNSUCCESSFUL


def test_a_trial_cut_short_by_a_power_off_is_rolled_back(ep: Endpoint,
                                                         signers: Signers) -> None:
    from bios_ws.domain.power import ResetType

    job = submit(ep, capsule(signers, 2))
    ep.power.reset_domain(ep.admin, "vm1", ResetType.ON)  # the trial begins
    assert updates(ep).job(ep.guest, job.job_id).state is JobState.RUNNING
    ep.power.reset_domain(ep.admin, "vm1", ResetType.FORCE_OFF)
    assert updates(ep).job(ep.guest, job.job_id).state is JobState.ROLLED_BACK
    boot(ep)
    assert entry(ep).fw_version == 1 and b"vbios-1" in ep.platform.console("vm1")


def test_a_pending_job_ends_failed_at_start(ep: Endpoint, signers: Signers) -> None:
    job = submit(ep, capsule(signers, 2))
    with ep.store.unit_of_work() as uow:  # as if the service died before the write
        uow.firmware.save_job(dataclasses.replace(job, state=JobState.PENDING,
                                                  percent_complete=0))
        uow.commit()
    assert "ended Failed" in updates(ep).resume(ep.observer.firmware)[0]
    assert updates(ep).job(ep.guest, job.job_id).state is JobState.FAILED


def test_a_staged_slot_that_changed_is_never_tried(ep: Endpoint, signers: Signers) -> None:
    job = submit(ep, capsule(signers, 2))
    ep.platform.stage_firmware("vm1", Slot.B, b"something else" * 100)
    assert "slot B changed" in updates(ep).resume(ep.observer.firmware)[0]
    assert updates(ep).job(ep.guest, job.job_id).state is JobState.FAILED
    boot(ep)
    assert entry(ep).fw_version == 1


def test_a_slot_changed_after_the_resume_fails_its_trial(ep: Endpoint,
                                                         signers: Signers) -> None:
    job = submit(ep, capsule(signers, 2))
    ep.platform.stage_firmware("vm1", Slot.B, capsule_image(signers, 9))
    boot(ep)
    rolled = updates(ep).job(ep.guest, job.job_id)
    assert rolled.state is JobState.ROLLED_BACK and "not the staged" in rolled.message
    assert entry(ep).fw_version == 1


def test_a_staged_job_survives_a_restart_and_applies_at_the_reset(
        ep: Endpoint, signers: Signers) -> None:
    job = submit(ep, capsule(signers, 2))
    assert updates(ep).resume(ep.observer.firmware) == [
        f"vm1: firmware job {job.job_id}: waits for the next reset"]
    boot(ep)
    assert updates(ep).job(ep.guest, job.job_id).state is JobState.COMPLETED


def capsule_image(signers: Signers, tag: int) -> bytes:
    """A bootable image other than any capsule's."""
    return firmware_volume(tag=f"other {tag}".encode())


def test_a_trial_waits_while_the_host_is_untrusted(ep: Endpoint, signers: Signers) -> None:
    from bios_ws.service.firmware_boot import FirmwareBoot

    def untrusted() -> None:
        raise ServiceRestricted("the host is Untrusted")

    job = submit(ep, capsule(signers, 2))
    plan = FirmwareBoot(ep.store.unit_of_work, ep.clock.now, untrusted).plan_slot("vm1")
    assert (plan.slot, plan.trial, plan.bios_version) == (Slot.A, False, "vbios-1")
    assert updates(ep).job(ep.guest, job.job_id).state is JobState.NEEDS_RESET
    boot(ep)  # trusted again: the next boot tries it
    assert updates(ep).job(ep.guest, job.job_id).state is JobState.COMPLETED
