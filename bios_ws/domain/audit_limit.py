"""The refusal limit of the audit log: no principal can flood it.

Every refused or failed call is audited, but the refusals of one principal are
written one row each only up to ``RefusalLimit.threshold`` in a window of
``RefusalLimit.window`` (20 a minute by default). Beyond it they are counted, and
when the window is over the count becomes one entry: operation
``RefusalsSummarized``, outcome ``summarized:<count>``, the principal's, about no
domain. A window is over at its end; its summary is written by the next refusal
of anyone, or the next diagnostics, after that. Successful operations are never
limited, and nothing is lost: rows plus summarised counts are every refusal.

The windows live in the store beside the log (``RefusalCounts``), so every worker
process on one store counts the same refusals; these rules say what to do with
them (``plan_refusal``), without I/O.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bios_ws.domain.audit import AuditRecord, digest_changes

SUMMARY_OPERATION = "RefusalsSummarized"
SUMMARY_OUTCOME = "summarized:"
_LIMITED_OUTCOMES = ("refused:", "failed:")


@dataclass(frozen=True)
class RefusalLimit:
    """At most ``threshold`` refusals of one principal written one row each per ``window``."""

    threshold: int = 20
    window: timedelta = timedelta(minutes=1)

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.window <= timedelta(0):
            raise ValueError("a refusal limit needs a threshold of 1 or more and a window")


DEFAULT_REFUSAL_LIMIT = RefusalLimit()


@dataclass(frozen=True)
class RefusalWindow:
    """One principal's refusals since ``started``: ``written`` as rows, ``counted`` beyond."""

    principal: str
    started: datetime
    written: int = 0
    counted: int = 0
    first_counted: datetime | None = None
    last_counted: datetime | None = None

    def over(self, now: datetime, limit: RefusalLimit) -> bool:
        """At its end, or when the clock went back before its start."""
        return not self.started <= now < self.started + limit.window


@dataclass(frozen=True)
class RefusalPlan:
    """What the store does, in this order: append ``summaries`` (of the windows that are
    over), remove the windows of ``closed``, store ``window`` (the refusing principal's,
    if any), and append the refusal itself if ``write``."""

    summaries: tuple[AuditRecord, ...]
    closed: tuple[str, ...]
    window: RefusalWindow | None
    write: bool


def is_refusal(outcome: str) -> bool:
    """Whether an audit outcome is a refused or failed call (the limited kind)."""
    return outcome.startswith(_LIMITED_OUTCOMES)


def summarized_count(outcome: str) -> int | None:
    """How many refusals a summary entry's outcome counts; None for any other outcome."""
    if not outcome.startswith(SUMMARY_OUTCOME):
        return None
    count = outcome[len(SUMMARY_OUTCOME):]
    return int(count) if count.isdigit() else None


def plan_refusal(windows: Sequence[RefusalWindow], refusal: AuditRecord | None,
                 now: datetime, limit: RefusalLimit = DEFAULT_REFUSAL_LIMIT) -> RefusalPlan:
    """The plan for ``refusal`` (None: only summarise the windows that are over at ``now``),
    given every open window."""
    if refusal is not None and not is_refusal(refusal.outcome):
        raise ValueError(f"only refusals are limited, not {refusal.outcome!r}")
    ended = [w for w in windows if w.over(now, limit)]
    summaries = tuple(s for s in (summary_of(w, now) for w in ended) if s is not None)
    closed = tuple(w.principal for w in ended)
    if refusal is None:
        return RefusalPlan(summaries, closed, None, False)
    current = next((w for w in windows
                    if w.principal == refusal.principal and w.principal not in closed), None)
    window, write = _admit(current, refusal.principal, now, limit)
    return RefusalPlan(summaries, closed, window, write)


def _admit(window: RefusalWindow | None, principal: str, now: datetime,
           limit: RefusalLimit) -> tuple[RefusalWindow, bool]:
    if window is None:
        return RefusalWindow(principal, now, written=1), True
    if window.written < limit.threshold:
        return dataclasses.replace(window, written=window.written + 1), True
    return dataclasses.replace(
        window, counted=window.counted + 1,
        first_counted=window.first_counted or now, last_counted=now), False


def summary_of(window: RefusalWindow, now: datetime) -> AuditRecord | None:
    """The entry that stands for the refusals ``window`` counted; None if it counted none."""
    if window.counted == 0:
        return None
    return AuditRecord(
        time=now, principal=window.principal, operation=SUMMARY_OPERATION, domain_id=None,
        outcome=f"{SUMMARY_OUTCOME}{window.counted}",
        changes_digest=digest_changes({
            "window_started": window.started.isoformat(), "written": window.written,
            "counted": window.counted,
            "first": window.first_counted.isoformat() if window.first_counted else None,
            "last": window.last_counted.isoformat() if window.last_counted else None,
        }),
    )
