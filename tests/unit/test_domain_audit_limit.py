"""The refusal limit's rules (``domain.audit_limit``), without I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bios_ws.domain.audit import AuditRecord
from bios_ws.domain.audit_limit import (
    DEFAULT_REFUSAL_LIMIT,
    SUMMARY_OPERATION,
    RefusalLimit,
    RefusalWindow,
    is_refusal,
    plan_refusal,
    summarized_count,
    summary_of,
)

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)
LIMIT = RefusalLimit(threshold=3, window=timedelta(seconds=10))


def refusal(principal: str = "guest:vm2", seconds: float = 0,
            outcome: str = "refused:AccessDenied") -> AuditRecord:
    return AuditRecord(time=T0 + timedelta(seconds=seconds), principal=principal,
                       operation="SetReferenceMeasurements", domain_id=None, outcome=outcome,
                       changes_digest="0" * 64)


def run(records: list[AuditRecord], limit: RefusalLimit = LIMIT,
        windows: list[RefusalWindow] | None = None
        ) -> tuple[list[AuditRecord], dict[str, RefusalWindow]]:
    """Apply the plans one after the other, as the store would: what is written, what is open."""
    written: list[AuditRecord] = []
    open_ = {w.principal: w for w in windows or []}
    for r in records:
        plan = plan_refusal(list(open_.values()), r, r.time, limit)
        written.extend(plan.summaries)
        for principal in plan.closed:
            del open_[principal]
        if plan.window is not None:
            open_[plan.window.principal] = plan.window
        if plan.write:
            written.append(r)
    return written, open_


def test_the_default_is_20_a_minute() -> None:
    assert RefusalLimit(20, timedelta(minutes=1)) == DEFAULT_REFUSAL_LIMIT


def test_refusals_beyond_the_threshold_are_counted_not_written() -> None:
    written, open_ = run([refusal(seconds=i) for i in range(7)])
    assert written == [refusal(seconds=i) for i in range(3)]
    window = open_["guest:vm2"]
    assert (window.started, window.written, window.counted) == (T0, 3, 4)
    assert (window.first_counted, window.last_counted) == (T0 + timedelta(seconds=3),
                                                           T0 + timedelta(seconds=6))


def test_the_next_refusal_after_the_window_writes_the_count_first() -> None:
    written, open_ = run([refusal(seconds=i) for i in range(7)] + [refusal(seconds=10)])
    summary = written[3]
    assert (summary.principal, summary.operation, summary.domain_id, summary.outcome) == (
        "guest:vm2", SUMMARY_OPERATION, None, "summarized:4")
    assert summary.time == T0 + timedelta(seconds=10)
    assert written[4] == refusal(seconds=10)  # a new window: written again
    assert open_["guest:vm2"] == RefusalWindow("guest:vm2", T0 + timedelta(seconds=10), 1)


def test_rows_plus_counts_are_every_refusal() -> None:
    records = [refusal(seconds=i * 0.25) for i in range(1000)]
    written, open_ = run(records)
    rows = sum(r.outcome == "refused:AccessDenied" for r in written)
    counts = sum(summarized_count(r.outcome) or 0 for r in written)
    pending = sum(w.counted for w in open_.values())
    assert rows + counts + pending == 1000
    assert len(written) <= 1000 * 0.25 / 10 * 4 + 4  # at most threshold + 1 per window


def test_each_principal_has_its_own_window() -> None:
    flood = [refusal("guest:vm2", i * 0.1) for i in range(50)]
    written, _ = run([*flood, refusal("guest:vm1", 6), refusal("admin:admin", 7)])
    assert refusal("guest:vm1", 6) in written and refusal("admin:admin", 7) in written


def test_a_sweep_summarises_every_window_that_is_over_and_closes_empty_ones() -> None:
    windows = [RefusalWindow("guest:vm2", T0, 3, 5), RefusalWindow("guest:vm1", T0, 2),
               RefusalWindow("guest:vm3", T0 + timedelta(seconds=5), 3, 1)]
    plan = plan_refusal(windows, None, T0 + timedelta(seconds=12), LIMIT)
    assert [s.outcome for s in plan.summaries] == ["summarized:5"]
    assert plan.closed == ("guest:vm2", "guest:vm1")
    assert (plan.window, plan.write) == (None, False)


def test_a_clock_gone_back_starts_a_new_window() -> None:
    window = RefusalWindow("guest:vm2", T0, 3, 2)
    assert window.over(T0 - timedelta(seconds=1), LIMIT)
    assert not window.over(T0 + timedelta(seconds=9.9), LIMIT)
    assert window.over(T0 + timedelta(seconds=10), LIMIT)


def test_successes_are_never_limited() -> None:
    assert is_refusal("refused:AccessDenied") and is_refusal("failed:StoreUnavailable")
    assert not is_refusal("ok") and not is_refusal("summarized:3")
    with pytest.raises(ValueError):
        plan_refusal([], refusal(outcome="ok"), T0, LIMIT)


def test_nothing_counted_needs_no_summary() -> None:
    assert summary_of(RefusalWindow("guest:vm2", T0, 3), T0) is None
    summary = summary_of(RefusalWindow("guest:vm2", T0, 3, 2, T0, T0), T0)
    assert summary is not None and summarized_count(summary.outcome) == 2
    assert summarized_count("ok") is None and summarized_count("summarized:x") is None


@pytest.mark.parametrize(("threshold", "seconds"), [(0, 60), (20, 0)])
def test_a_limit_needs_a_threshold_and_a_window(threshold: int, seconds: int) -> None:
    with pytest.raises(ValueError):
        RefusalLimit(threshold, timedelta(seconds=seconds))
