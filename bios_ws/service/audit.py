"""The one way a refused or failed call is audited: under the refusal limit.

``audit_refusal`` writes the refusal's entry, or counts it when its principal is
over the limit of this window (``domain.audit_limit``: 20 rows a minute by
default), and first writes the count entries of every window that is over;
``summarize_refusals`` writes those alone (diagnostics call it before they read).
Each runs in a unit of work of its own: a refused write's unit was rolled back.
Successful operations append their entries directly, never limited.
"""

from __future__ import annotations

from datetime import datetime

from bios_ws.domain.audit import AuditRecord
from bios_ws.domain.audit_limit import (
    DEFAULT_REFUSAL_LIMIT,
    RefusalLimit,
    RefusalPlan,
    plan_refusal,
)
from bios_ws.domain.ports import UnitOfWork, UnitOfWorkFactory, retrying


def audit_refusal(uow: UnitOfWorkFactory, record: AuditRecord,
                  limit: RefusalLimit = DEFAULT_REFUSAL_LIMIT) -> None:
    """Audit a refused (``refused:<Code>``) or failed (``failed:<Code>``) call (its unit
    runs again if it lost to a concurrent one: ``ports.retrying``)."""

    def write(unit: UnitOfWork) -> None:
        windows = unit.refusals.windows(for_update=True)  # the write lock, first
        _carry_out(unit, plan_refusal(windows, record, record.time, limit), record)
        unit.commit()

    retrying(uow, write)


def summarize_refusals(uow: UnitOfWorkFactory, now: datetime,
                       limit: RefusalLimit = DEFAULT_REFUSAL_LIMIT) -> int:
    """Write the count entries of the windows over at ``now``; how many windows closed.
    Takes the write lock only when there is something to write."""
    with uow() as unit:
        if not any(w.over(now, limit) for w in unit.refusals.windows()):
            return 0

    def write(unit: UnitOfWork) -> RefusalPlan:
        plan = plan_refusal(unit.refusals.windows(for_update=True), None, now, limit)
        _carry_out(unit, plan)
        unit.commit()
        return plan

    return len(retrying(uow, write).closed)


def _carry_out(unit: UnitOfWork, plan: RefusalPlan, refusal: AuditRecord | None = None
               ) -> None:
    for summary in plan.summaries:
        unit.audit.append(summary)
    for principal in plan.closed:
        unit.refusals.remove(principal)
    if plan.window is not None:
        unit.refusals.put(plan.window)
    if plan.write and refusal is not None:
        unit.audit.append(refusal)
