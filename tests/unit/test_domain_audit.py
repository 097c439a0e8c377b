"""The hash-chained audit log: chaining, every way of breaking the chain, who sees what."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bios_ws.domain.audit import (
    GENESIS_HASH,
    HOST_WIDE,
    AuditEntry,
    AuditRecord,
    digest_changes,
    scope_of,
    verify_chain,
    visible_to,
)
from bios_ws.domain.fakes import MemoryStore

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def _record(n: int) -> AuditRecord:
    return AuditRecord(
        time=START + timedelta(seconds=n), principal="guest:vm1", operation="SetAttributes",
        domain_id="vm1", outcome="ok", changes_digest=digest_changes({"n": n}),
    )


def _chain(length: int) -> list[AuditEntry]:
    entries: list[AuditEntry] = []
    prev = GENESIS_HASH
    for seq in range(1, length + 1):
        entries.append(AuditEntry.chain(_record(seq), seq, prev))
        prev = entries[-1].entry_hash
    return entries


def test_empty_chain_holds() -> None:
    assert verify_chain([]) is None


def test_intact_chain_holds() -> None:
    entries = _chain(5)
    assert verify_chain(entries) is None
    assert entries[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.entry_hash for a, b in itertools.pairwise(entries))
    assert len({e.entry_hash for e in entries}) == 5


def test_record_round_trips() -> None:
    entry = AuditEntry.chain(_record(1), 1, GENESIS_HASH)
    assert entry.record() == _record(1)


def test_every_altered_field_is_detected_and_named() -> None:
    changes: dict[str, Any] = {
        "time": START, "principal": "admin:root", "operation": "ChangePassword",
        "domain_id": "vm9", "outcome": "refused:AccessDenied", "changes_digest": "0" * 64,
    }
    for field, value in changes.items():
        entries = _chain(4)
        entries[2] = dataclasses.replace(entries[2], **{field: value})
        broken = verify_chain(entries)
        assert broken is not None, field
        assert broken.seq == 3
        assert "altered" in broken.reason


def test_altered_entry_with_recomputed_hash_breaks_the_next_link() -> None:
    entries = _chain(4)
    forged = AuditEntry.chain(
        dataclasses.replace(_record(2), outcome="refused:AccessDenied"), 2, entries[0].entry_hash
    )
    entries[1] = forged
    broken = verify_chain(entries)
    assert broken is not None and broken.seq == 3
    assert "does not follow" in broken.reason


def test_removed_entry_is_named() -> None:
    entries = _chain(5)
    del entries[2]
    broken = verify_chain(entries)
    assert broken is not None and broken.seq == 3
    assert "removed" in broken.reason


def test_removed_first_entry_is_named() -> None:
    broken = verify_chain(_chain(3)[1:])
    assert broken is not None and broken.seq == 1


def test_reordered_entries_are_detected() -> None:
    entries = _chain(5)
    entries[1], entries[3] = entries[3], entries[1]
    broken = verify_chain(entries)
    assert broken is not None and broken.seq == 2
    assert "out of order" in broken.reason


def test_renumbered_entries_are_detected() -> None:
    entries = _chain(3)
    entries[1] = dataclasses.replace(entries[1], seq=2)  # unchanged: still holds
    assert verify_chain(entries) is None
    entries[2] = dataclasses.replace(entries[2], seq=2)
    broken = verify_chain(entries)
    assert broken is not None and broken.seq == 3


def test_spliced_chain_is_detected() -> None:
    other = [AuditEntry.chain(dataclasses.replace(_record(1), principal="x"), 1, GENESIS_HASH)]
    entries = _chain(3)
    broken = verify_chain([other[0], *entries[1:]])
    assert broken is not None and broken.seq == 2


def test_digest_changes_is_stable_and_order_free() -> None:
    assert digest_changes({"a": 1, "b": [1, 2]}) == digest_changes({"b": [1, 2], "a": 1})
    assert digest_changes({"a": 1}) != digest_changes({"a": 2})
    assert len(digest_changes({})) == 64


def test_memory_audit_log_chains_and_commits_only_on_commit() -> None:
    store = MemoryStore()
    with store.unit_of_work() as uow:
        uow.audit.append(_record(1))
    assert store.audit == []
    with store.unit_of_work() as uow:
        first = uow.audit.append(_record(1))
        second = uow.audit.append(_record(2))
        uow.commit()
    assert (first.seq, second.seq) == (1, 2)
    assert second.prev_hash == first.entry_hash
    with store.unit_of_work() as uow:
        assert [e.seq for e in uow.audit.entries(since_seq=2)] == [2]
        assert verify_chain(uow.audit.entries()) is None


@pytest.mark.parametrize(("principal", "domain_id", "scope"), [
    ("guest:vm1", "vm1", "vm1"),
    ("guest:vm1", None, "vm1"),  # a guest's refused host-wide call stays its own
    ("guest:vm1", "vm2", "vm1"),  # ... and its refused attempt on another domain too
    ("admin:admin", "vm2", "vm2"),
    ("admin:platform", "vm2", "vm2"),
    ("admin:tester", None, HOST_WIDE),
    ("vbios:integrity-monitor", None, HOST_WIDE),
])
def test_scope_of(principal: str, domain_id: str | None, scope: str) -> None:
    assert scope_of(principal, domain_id) == scope


def test_a_guest_sees_its_scope_and_host_wide_entries() -> None:
    def entry(principal: str, domain_id: str | None) -> AuditEntry:
        return AuditEntry.chain(dataclasses.replace(_record(1), principal=principal,
                                                    domain_id=domain_id), 1, GENESIS_HASH)

    assert visible_to("vm1", entry("guest:vm1", None))
    assert visible_to("vm1", entry("admin:tester", None))
    assert visible_to("vm1", entry("admin:admin", "vm1"))
    assert not visible_to("vm1", entry("guest:vm2", None))
    assert not visible_to("vm1", entry("guest:vm2", "vm1"))
    assert not visible_to("vm1", entry("admin:admin", "vm2"))
