"""A firmware update job: its states, the transitions allowed between them, its progress.

An accepted capsule becomes a job (issue 13)::

    Pending ─► Staged ─(OnReset)─► NeedsReset ─► Running ─► Completed
                 └──────(Immediate)──────────────►   └───► RolledBack
    Pending, Staged, NeedsReset, Running ─► Failed

- ``Staged``: the image is written to the inactive slot and verified by hash;
- ``NeedsReset``: apply time OnReset (the default) waits for the next reset;
  Immediate goes from ``Staged`` to ``Running`` (a reset is requested at once);
- ``Running``: the machine boots the new slot;
- ``Completed``, ``Failed`` (with an ESRT status and a message saying why) and
  ``RolledBack`` (the new image did not boot; the previous slot took over) are
  terminal: nothing leaves them.

PercentComplete is 0-100 and never goes back; ``Completed`` is 100. Every
function returns a new job; a transition the table does not allow raises
``JobTransitionRefused``, a programming error of the caller.

Standard library only.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType

from bios_ws.domain.firmware_update import LastAttemptStatus, Slot


class JobState(StrEnum):
    """Where a firmware update job is."""

    PENDING = "Pending"
    STAGED = "Staged"
    NEEDS_RESET = "NeedsReset"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"


class ApplyTime(StrEnum):
    """When a staged image is applied: at the next reset, or at once with a reset requested."""

    ON_RESET = "OnReset"
    IMMEDIATE = "Immediate"


#: Every transition a job may make; any other is refused.
ALLOWED_TRANSITIONS: Mapping[JobState, frozenset[JobState]] = MappingProxyType({
    JobState.PENDING: frozenset({JobState.STAGED, JobState.FAILED}),
    JobState.STAGED: frozenset({JobState.NEEDS_RESET, JobState.RUNNING, JobState.FAILED}),
    JobState.NEEDS_RESET: frozenset({JobState.RUNNING, JobState.FAILED}),
    JobState.RUNNING: frozenset({JobState.COMPLETED, JobState.ROLLED_BACK, JobState.FAILED}),
    JobState.COMPLETED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.ROLLED_BACK: frozenset(),
})

#: The states a job ends in.
TERMINAL_STATES = frozenset(state for state, nexts in ALLOWED_TRANSITIONS.items() if not nexts)


class JobTransitionRefused(ValueError):
    """A job was asked to move where its state table does not allow, or to go back in progress."""


def check_transition(current: JobState, target: JobState) -> None:
    """Raise ``JobTransitionRefused`` unless ``current`` -> ``target`` is in the table."""
    if target not in ALLOWED_TRANSITIONS[current]:
        if current in TERMINAL_STATES:
            raise JobTransitionRefused(f"the job has ended {current}; it cannot become {target}")
        allowed = ", ".join(sorted(ALLOWED_TRANSITIONS[current]))
        raise JobTransitionRefused(f"a {current} job cannot become {target} (only {allowed})")


@dataclass(frozen=True, slots=True)
class FirmwareJob:
    """One update of one domain's firmware by one accepted capsule, and how far it has got.

    ``status`` is the ESRT status of the outcome: SUCCESS once Completed, the failure's
    code once Failed or RolledBack, None while the job runs.

    A capsule refused at once is kept as a job that ended Failed, so that the jobs of a
    domain are its update history (fwupd's): every attempt, with versions, times,
    outcome and signer. Such a job may lack what the capsule did not show: its firmware
    class, FwVersion and MonotonicCount are None when its headers did not parse, and it
    has no ``slot`` and no ``signer`` when its signature did not verify."""

    job_id: str
    domain_id: str
    firmware_class: uuid.UUID | None
    fw_version: int | None
    monotonic_count: int | None
    apply_time: ApplyTime
    created_at: datetime
    updated_at: datetime
    state: JobState = JobState.PENDING
    percent_complete: int = 0
    status: LastAttemptStatus | None = None
    message: str = ""
    #: The image's own floor (LowestSupportedVersion of its payload header).
    lowest_supported_version: int | None = None
    #: The slot the image is written to (the inactive one when the job was made).
    slot: Slot | None = None
    #: The FwVersion the domain had when the job was made.
    from_version: int | None = None
    #: SHA-256 (hex) of the image written to ``slot``, and of the whole capsule.
    image_sha256: str = ""
    capsule_sha256: str = ""
    #: The subject (RFC 4514) of the certificate that signed the capsule.
    signer: str = ""
    #: Who asked for the update (``Principal`` as text).
    principal: str = ""

    def __post_init__(self) -> None:
        if not 0 <= self.percent_complete <= 100:
            raise ValueError(f"PercentComplete {self.percent_complete} is outside 0..100")
        if (self.status is None) == (self.state in TERMINAL_STATES):
            raise ValueError(f"a {self.state} job {'needs' if self.status is None else 'has no'}"
                             " ESRT status")

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES


def report_progress(job: FirmwareJob, percent: int, *, at: datetime) -> FirmwareJob:
    """The job with PercentComplete ``percent``, which may not be below the current one, of a
    job that has not ended."""
    if job.finished:
        raise JobTransitionRefused(f"the job has ended {job.state}; its progress is final")
    if not 0 <= percent <= 100:
        raise JobTransitionRefused(f"PercentComplete {percent} is outside 0..100")
    if percent < job.percent_complete:
        raise JobTransitionRefused(f"PercentComplete cannot go back from {job.percent_complete}"
                                   f" to {percent}")
    return dataclasses.replace(job, percent_complete=percent, updated_at=at)


def advance(job: FirmwareJob, target: JobState, *, at: datetime, percent: int | None = None,
            message: str = "") -> FirmwareJob:
    """The job moved to a non-final ``target`` the table allows, optionally with progress."""
    if target in TERMINAL_STATES:
        raise JobTransitionRefused(f"{target} ends a job: use complete, fail or roll_back")
    check_transition(job.state, target)
    if job.state is JobState.STAGED:
        expected = (JobState.RUNNING if job.apply_time is ApplyTime.IMMEDIATE
                    else JobState.NEEDS_RESET)
        if target is not expected:
            raise JobTransitionRefused(f"a Staged job applied {job.apply_time} becomes"
                                       f" {expected}, not {target}")
    moved = dataclasses.replace(job, state=target, updated_at=at, message=message)
    return moved if percent is None else report_progress(moved, percent, at=at)


def complete(job: FirmwareJob, *, at: datetime, message: str = "") -> FirmwareJob:
    """A Running job ends Completed: 100 percent, status SUCCESS."""
    check_transition(job.state, JobState.COMPLETED)
    return dataclasses.replace(job, state=JobState.COMPLETED, percent_complete=100,
                               status=LastAttemptStatus.SUCCESS, updated_at=at, message=message)


def fail(job: FirmwareJob, status: LastAttemptStatus, message: str, *,
         at: datetime) -> FirmwareJob:
    """A job ends Failed with the ESRT ``status`` (not SUCCESS) and a ``message`` saying why;
    its progress stays where it got to."""
    return _end(job, JobState.FAILED, status, message, at)


def roll_back(job: FirmwareJob, message: str, *, at: datetime) -> FirmwareJob:
    """A Running job whose image did not boot ends RolledBack, status UNSUCCESSFUL."""
    return _end(job, JobState.ROLLED_BACK, LastAttemptStatus.UNSUCCESSFUL, message, at)


def _end(job: FirmwareJob, target: JobState, status: LastAttemptStatus, message: str,
         at: datetime) -> FirmwareJob:
    check_transition(job.state, target)
    if status is LastAttemptStatus.SUCCESS:
        raise JobTransitionRefused(f"a {target} job cannot have the status SUCCESS")
    if not message.strip():
        raise JobTransitionRefused(f"a {target} job needs a message that says why")
    return dataclasses.replace(job, state=target, status=status, message=message, updated_at=at)
