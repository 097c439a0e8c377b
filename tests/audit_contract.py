"""The audit log's contract beyond the chain: who sees what, and the refusal windows.

Run against the in-memory fake (unit) and the SQL store (integration): subclass
``AuditContract`` in a ``Test...`` class and provide a ``store`` fixture, an empty
store with a ``unit_of_work()``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bios_ws.domain.audit import AuditRecord, verify_chain, visible_to
from bios_ws.domain.audit_limit import RefusalLimit, RefusalWindow, summarized_count
from bios_ws.service.audit import audit_refusal, summarize_refusals

T0 = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC)


def record(principal: str, domain_id: str | None, outcome: str = "ok",
           at: datetime = T0, operation: str = "SetAttributes") -> AuditRecord:
    return AuditRecord(time=at, principal=principal, operation=operation,
                       domain_id=domain_id, outcome=outcome, changes_digest="0" * 64)


#: (principal, domain) of entries of every kind, and whether vm1's guest sees each.
MIXED = [
    ("admin:admin", "vm1", True),  # the admin acting on vm1
    ("admin:admin", "vm2", False),  # ... on vm2
    ("admin:tester", None, True),  # host-wide (e.g. SetReferenceMeasurements)
    ("vbios:integrity-monitor", None, True),  # host-wide (restricted mode)
    ("guest:vm1", "vm1", True),  # vm1's own
    ("guest:vm1", None, True),  # vm1's own refusal of a host-wide operation
    ("guest:vm2", "vm2", False),  # vm2's own
    ("guest:vm2", None, False),  # vm2's refused host-wide attempt
    ("guest:vm2", "vm1", False),  # vm2's refused attempt on vm1: vm2's, not vm1's
    ("guest:vm1", "vm2", True),  # vm1's refused attempt on vm2: vm1's own
    ("admin:platform", "vm1", True),  # a boot of vm1
]


class AuditContract:
    """Behaviour every AuditLog and RefusalCounts implementation must show."""

    def append(self, store: Any, records: list[AuditRecord]) -> None:
        with store.unit_of_work() as uow:
            for r in records:
                uow.audit.append(r)
            uow.commit()

    def test_a_guest_sees_its_own_and_host_wide_entries_only(self, store: Any) -> None:
        self.append(store, [record(p, d) for p, d, _ in MIXED])
        with store.unit_of_work() as uow:
            seen = uow.audit.seen_by("vm1", 50)
            everything = uow.audit.recent(50)
        expected = [e for e, (_, _, shown) in zip(everything, MIXED, strict=True) if shown]
        assert [s.entry for s in seen] == expected
        assert all(visible_to("vm1", s.entry) for s in seen)
        assert [s.number for s in seen] == list(range(1, len(expected) + 1))

    def test_numbers_have_no_gaps_and_do_not_change(self, store: Any) -> None:
        self.append(store, [record(p, d) for p, d, _ in MIXED])
        with store.unit_of_work() as uow:
            before = uow.audit.seen_by("vm1", 50)
        self.append(store, [record("guest:vm2", "vm2")] * 5 + [record("guest:vm1", "vm1")])
        with store.unit_of_work() as uow:
            after = uow.audit.seen_by("vm1", 50)
        assert after[:-1] == before
        assert after[-1].number == before[-1].number + 1
        assert after[-1].entry.seq == before[-1].entry.seq + 6  # what the numbers hide

    def test_a_guests_last_entries_are_found_behind_any_number_of_others(
            self, store: Any) -> None:
        self.append(store, [record("guest:vm1", "vm1", at=T0 + timedelta(seconds=i))
                            for i in range(5)])
        self.append(store, [record("guest:vm2", None, "refused:AccessDenied")] * 1500)
        with store.unit_of_work() as uow:
            seen = uow.audit.seen_by("vm1", 3)
            assert uow.audit.seen_by("vm1", 0) == []
            assert uow.audit.seen_by("vm3", 10) == []
        assert [s.number for s in seen] == [3, 4, 5]
        assert [s.entry.time for s in seen] == [T0 + timedelta(seconds=i) for i in (2, 3, 4)]

    def test_a_domain_created_again_sees_nothing_of_the_one_deleted(self, store: Any) -> None:
        self.append(store, [record(p, d) for p, d, _ in MIXED])
        with store.unit_of_work() as uow:
            uow.begin_writing()  # it reads, then writes
            host_wide = [s.entry for s in uow.audit.seen_by("vm1", 50)
                         if s.entry.domain_id is None and s.entry.principal.startswith(
                             ("admin:", "vbios:"))]
            uow.audit.retire_scope("vm1")
            uow.commit()
        self.append(store, [record("admin:admin", "vm1", operation="CreateDomain"),
                            record("guest:vm1", "vm1")])
        with store.unit_of_work() as uow:
            seen = uow.audit.seen_by("vm1", 50)
            others = uow.audit.seen_by("vm2", 50)
        assert [s.entry.operation for s in seen if s.entry.domain_id == "vm1"] == [
            "CreateDomain", "SetAttributes"]
        assert [s.entry for s in seen if s.entry.domain_id is None] == host_wide
        assert [s.number for s in seen] == list(range(1, len(seen) + 1))
        assert len(others) == 6  # vm2's view is untouched
        with store.unit_of_work() as uow:
            assert len(list(uow.audit.entries())) == len(MIXED) + 2  # nothing removed
            assert verify_chain(uow.audit.entries()) is None

    def test_refusal_windows_are_kept_put_and_removed(self, store: Any) -> None:
        one = RefusalWindow("guest:vm1", T0, written=20, counted=3, first_counted=T0,
                            last_counted=T0 + timedelta(seconds=2))
        two = RefusalWindow("admin:admin", T0, written=1)
        with store.unit_of_work() as uow:
            uow.refusals.put(one)
            uow.refusals.put(two)
        with store.unit_of_work() as uow:  # not committed: nothing kept
            uow.begin_writing()  # it reads, then writes
            assert uow.refusals.windows() == []
            uow.refusals.put(one)
            uow.refusals.put(two)
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.refusals.windows(for_update=True) == [two, one]
            uow.refusals.put(RefusalWindow("guest:vm1", T0, written=20, counted=4))
            uow.refusals.remove("admin:admin")
            uow.refusals.remove("nobody")
            uow.commit()
        with store.unit_of_work() as uow:
            assert uow.refusals.windows() == [RefusalWindow("guest:vm1", T0, written=20,
                                                            counted=4)]

    def test_a_flood_of_refusals_is_counted_and_summarised(self, store: Any) -> None:
        limit = RefusalLimit(threshold=20, window=timedelta(minutes=1))
        uow = store.unit_of_work
        for i in range(1000):
            audit_refusal(uow, record("guest:vm2", None, "refused:AccessDenied",
                                      at=T0 + timedelta(milliseconds=10 * i)), limit)
        audit_refusal(uow, record("guest:vm1", "vm1", "refused:VersionConflict"), limit)
        with store.unit_of_work() as unit:
            assert len(list(unit.audit.entries())) == 21
        assert summarize_refusals(uow, T0 + timedelta(seconds=30), limit) == 0
        assert summarize_refusals(uow, T0 + timedelta(seconds=61), limit) == 2
        with store.unit_of_work() as unit:
            log = list(unit.audit.entries())
            assert unit.refusals.windows() == []
            assert [s.entry for s in unit.audit.seen_by("vm1", 50)] == [log[20]]
        assert verify_chain(log) is None
        assert len(log) == 22
        rows = sum(e.principal == "guest:vm2" and e.outcome == "refused:AccessDenied"
                   for e in log)
        summary = log[-1]
        assert (summary.principal, summary.operation, summary.domain_id) == (
            "guest:vm2", "RefusalsSummarized", None)
        assert rows == 20 and summarized_count(summary.outcome) == 980
