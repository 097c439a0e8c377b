"""The firmware update job: every allowed transition, every refused one, terminal states,
PercentComplete 0-100 and never back, the outcome's ESRT status and message."""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from bios_ws.domain.firmware_job import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATES,
    ApplyTime,
    FirmwareJob,
    JobState,
    JobTransitionRefused,
    advance,
    check_transition,
    complete,
    fail,
    report_progress,
    roll_back,
)
from bios_ws.domain.firmware_update import LastAttemptStatus

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=5)
S = JobState

ALLOWED = {
    (S.PENDING, S.STAGED), (S.PENDING, S.FAILED),
    (S.STAGED, S.NEEDS_RESET), (S.STAGED, S.RUNNING), (S.STAGED, S.FAILED),
    (S.NEEDS_RESET, S.RUNNING), (S.NEEDS_RESET, S.FAILED),
    (S.RUNNING, S.COMPLETED), (S.RUNNING, S.ROLLED_BACK), (S.RUNNING, S.FAILED),
}
REFUSED = sorted(set(itertools.product(S, S)) - ALLOWED)


def job(state: JobState = S.PENDING, *, apply_time: ApplyTime = ApplyTime.ON_RESET,
        percent: int = 0) -> FirmwareJob:
    status = None
    if state is S.COMPLETED:
        status = LastAttemptStatus.SUCCESS
    elif state in (S.FAILED, S.ROLLED_BACK):
        status = LastAttemptStatus.UNSUCCESSFUL
    return FirmwareJob("job-1", "guest-1", uuid.UUID(int=1), fw_version=7, monotonic_count=10,
                       apply_time=apply_time, created_at=T0, updated_at=T0, state=state,
                       percent_complete=percent, status=status)


# --- the table ------------------------------------------------------------------------------

def test_the_table_is_the_documented_one() -> None:
    assert {(a, b) for a, nexts in ALLOWED_TRANSITIONS.items() for b in nexts} == ALLOWED
    assert set(ALLOWED_TRANSITIONS) == set(S)


def test_the_terminal_states_are_completed_failed_and_rolled_back() -> None:
    assert {S.COMPLETED, S.FAILED, S.ROLLED_BACK} == TERMINAL_STATES


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_an_allowed_transition_passes_the_check(current: JobState, target: JobState) -> None:
    check_transition(current, target)


@pytest.mark.parametrize(("current", "target"), REFUSED)
def test_any_other_transition_is_refused(current: JobState, target: JobState) -> None:
    with pytest.raises(JobTransitionRefused):
        check_transition(current, target)


def test_a_refusal_names_what_is_allowed() -> None:
    with pytest.raises(JobTransitionRefused,
                       match=r"^a Pending job cannot become Running \(only Failed, Staged\)$"):
        check_transition(S.PENDING, S.RUNNING)
    with pytest.raises(JobTransitionRefused,
                       match=r"^the job has ended Completed; it cannot become Running$"):
        check_transition(S.COMPLETED, S.RUNNING)


def test_the_state_names_are_those_of_the_contract() -> None:
    assert [s.value for s in S] == ["Pending", "Staged", "NeedsReset", "Running", "Completed",
                                    "Failed", "RolledBack"]


# --- the path of a job ------------------------------------------------------------------------

def test_an_on_reset_job_waits_for_the_reset_and_completes() -> None:
    staged = advance(job(), S.STAGED, at=T1, percent=40, message="written to slot B")
    assert (staged.state, staged.percent_complete, staged.updated_at, staged.message) == (
        S.STAGED, 40, T1, "written to slot B")
    waiting = advance(staged, S.NEEDS_RESET, at=T1, percent=50)
    running = advance(waiting, S.RUNNING, at=T1)
    assert running.percent_complete == 50 and running.status is None and not running.finished
    done = complete(running, at=T1, message="FwVersion 7 booted")
    assert (done.state, done.percent_complete, done.status, done.finished) == (
        S.COMPLETED, 100, LastAttemptStatus.SUCCESS, True)


def test_an_immediate_job_runs_right_after_staging() -> None:
    staged = job(S.STAGED, apply_time=ApplyTime.IMMEDIATE)
    assert advance(staged, S.RUNNING, at=T1).state is S.RUNNING
    with pytest.raises(JobTransitionRefused, match="applied Immediate becomes Running"):
        advance(staged, S.NEEDS_RESET, at=T1)


def test_an_on_reset_job_does_not_run_before_the_reset() -> None:
    with pytest.raises(JobTransitionRefused, match="applied OnReset becomes NeedsReset"):
        advance(job(S.STAGED), S.RUNNING, at=T1)


def test_advance_does_not_end_a_job() -> None:
    for target in TERMINAL_STATES:
        with pytest.raises(JobTransitionRefused, match="ends a job"):
            advance(job(S.RUNNING), target, at=T1)


def test_advance_refuses_what_the_table_refuses() -> None:
    with pytest.raises(JobTransitionRefused):
        advance(job(S.PENDING), S.RUNNING, at=T1)


@pytest.mark.parametrize("state", [S.PENDING, S.STAGED, S.NEEDS_RESET, S.RUNNING])
def test_a_running_job_may_fail_with_a_status_and_a_reason(state: JobState) -> None:
    failed = fail(job(state, percent=30), LastAttemptStatus.INSUFFICIENT_RESOURCES,
                  "the inactive slot could not be written: disk full", at=T1)
    assert (failed.state, failed.status, failed.percent_complete, failed.message) == (
        S.FAILED, LastAttemptStatus.INSUFFICIENT_RESOURCES, 30,
        "the inactive slot could not be written: disk full")


def test_a_failure_is_not_a_success_and_says_why() -> None:
    with pytest.raises(JobTransitionRefused, match="SUCCESS"):
        fail(job(S.RUNNING), LastAttemptStatus.SUCCESS, "odd", at=T1)
    with pytest.raises(JobTransitionRefused, match="says why"):
        fail(job(S.RUNNING), LastAttemptStatus.UNSUCCESSFUL, "  ", at=T1)


def test_a_running_job_whose_image_did_not_boot_rolls_back() -> None:
    rolled = roll_back(job(S.RUNNING, percent=80), "no boot attempt within 60 s", at=T1)
    assert (rolled.state, rolled.status, rolled.percent_complete) == (
        S.ROLLED_BACK, LastAttemptStatus.UNSUCCESSFUL, 80)


def test_only_a_running_job_rolls_back_or_completes() -> None:
    with pytest.raises(JobTransitionRefused):
        roll_back(job(S.NEEDS_RESET), "no", at=T1)
    with pytest.raises(JobTransitionRefused):
        complete(job(S.STAGED), at=T1)


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_nothing_leaves_a_terminal_state(state: JobState) -> None:
    ended = job(state)
    with pytest.raises(JobTransitionRefused):
        fail(ended, LastAttemptStatus.UNSUCCESSFUL, "again", at=T1)
    with pytest.raises(JobTransitionRefused):
        complete(ended, at=T1)
    with pytest.raises(JobTransitionRefused, match="final"):
        report_progress(ended, 100, at=T1)


# --- progress -------------------------------------------------------------------------------

def test_progress_moves_forward_or_stays() -> None:
    moved = report_progress(job(percent=10), 10, at=T1)
    assert (moved.percent_complete, moved.updated_at) == (10, T1)
    assert report_progress(moved, 100, at=T1).percent_complete == 100


def test_progress_never_goes_back() -> None:
    with pytest.raises(JobTransitionRefused, match="cannot go back from 50 to 40"):
        report_progress(job(percent=50), 40, at=T1)
    with pytest.raises(JobTransitionRefused, match="cannot go back"):
        advance(job(S.STAGED, percent=50), S.NEEDS_RESET, at=T1, percent=20)


@pytest.mark.parametrize("percent", [-1, 101])
def test_progress_is_between_0_and_100(percent: int) -> None:
    with pytest.raises(JobTransitionRefused, match=r"outside 0\.\.100"):
        report_progress(job(), percent, at=T1)
    with pytest.raises(ValueError, match=r"outside 0\.\.100"):
        job(percent=percent)


def test_a_job_has_a_status_exactly_when_it_has_ended() -> None:
    with pytest.raises(ValueError, match="needs"):
        dataclasses.replace(job(S.RUNNING), state=S.COMPLETED)
    with pytest.raises(ValueError, match="has no"):
        dataclasses.replace(job(S.RUNNING), status=LastAttemptStatus.SUCCESS)
