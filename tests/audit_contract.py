"""The audit log's contract beyond the chain: who sees what, numbered how.

Run against the in-memory fake (unit) and the SQL store (integration): subclass
``AuditContract`` in a ``Test...`` class and provide a ``store`` fixture, an empty
store with a ``unit_of_work()``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bios_ws.domain.audit import AuditRecord, visible_to

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
    """Behaviour every AuditLog implementation must show."""

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
