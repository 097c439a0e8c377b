"""Certificates and incarnations on SQLite and in memory alike (one contract); a
version-3 store upgrades to version 4 with an incarnation for every domain."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bios_ws.domain.credentials import CertificateRecord, RevocationReason
from bios_ws.domain.principal import Role
from bios_ws.domain.state import DomainState
from bios_ws.store import SCHEMA_VERSION, open_store

T0 = datetime(2026, 11, 1, 12, 0, 0, 654321, tzinfo=UTC)


def record(serial: int, domain_id: str | None = "vm1", *, issued: datetime = T0,
           role: Role = Role.GUEST) -> CertificateRecord:
    return CertificateRecord(
        serial=serial, role=role, domain_id=domain_id,
        incarnation=None if domain_id is None else "0123456789abcdef",
        subject=domain_id or "vbios-admin", not_before=issued - timedelta(minutes=5),
        not_after=issued + timedelta(days=30), issued_at=issued)


def add(store: Any, *records: CertificateRecord) -> None:
    with store.unit_of_work() as uow:
        for item in records:
            uow.credentials.add(item)
        uow.commit()


def test_a_record_round_trips_with_every_field(store: Any) -> None:
    big = record(2**159 - 1)  # the largest serial RFC 5280 allows
    admin = record(7, None, role=Role.ADMIN, issued=T0 + timedelta(seconds=1))
    add(store, big, admin)
    with store.unit_of_work() as uow:
        assert uow.credentials.get(big.serial) == big
        assert uow.credentials.get(admin.serial) == admin
        assert uow.credentials.get(8) is None
        assert uow.credentials.issued() == [big, admin]
        assert uow.credentials.issued("vm1") == [big]


def test_a_serial_is_recorded_once(store: Any) -> None:
    add(store, record(5))
    with pytest.raises(ValueError, match="already recorded"), store.unit_of_work() as uow:
        uow.credentials.add(record(5, "other"))
    with store.unit_of_work() as uow:
        assert uow.credentials.get(5) == record(5)


def test_revoke_marks_once_and_lists_what_it_revoked(store: Any) -> None:
    add(store, record(1), record(2, issued=T0 + timedelta(seconds=1)), record(3, "vm2"))
    at = T0 + timedelta(hours=1)
    with store.unit_of_work() as uow:
        done = uow.credentials.revoke([2, 1, 2, 99], at, RevocationReason.KEY_COMPROMISE)
        uow.commit()
    assert [r.serial for r in done] == [1, 2]
    assert all(r.revoked_at == at and r.reason is RevocationReason.KEY_COMPROMISE for r in done)
    with store.unit_of_work() as uow:
        again = uow.credentials.revoke([1, 3], at + timedelta(hours=1),
                                       RevocationReason.SUPERSEDED)
        uow.commit()
    assert [r.serial for r in again] == [3]
    with store.unit_of_work() as uow:
        assert uow.credentials.revoked() == [(1, at), (2, at), (3, at + timedelta(hours=1))]
        assert uow.credentials.get(1) == dataclasses.replace(
            record(1), revoked_at=at, reason=RevocationReason.KEY_COMPROMISE)


def test_a_rolled_back_revocation_leaves_nothing(store: Any) -> None:
    add(store, record(1))
    with store.unit_of_work() as uow:
        uow.credentials.revoke([1], T0, RevocationReason.UNSPECIFIED)
    with store.unit_of_work() as uow:
        assert uow.credentials.revoked() == []


def test_incarnations_start_replace_and_end(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.begin_writing()  # it reads, then writes
        assert uow.credentials.incarnation("vm1") is None
        uow.credentials.set_incarnation("vm1", "aaaaaaaaaaaaaaaa")
        uow.credentials.set_incarnation("vm1", "bbbbbbbbbbbbbbbb")
        uow.credentials.end_incarnation("nothing")
        uow.commit()
    with store.unit_of_work() as uow:
        uow.begin_writing()  # it reads, then writes
        assert uow.credentials.incarnation("vm1") == "bbbbbbbbbbbbbbbb"
        uow.credentials.end_incarnation("vm1")
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.credentials.incarnation("vm1") is None


def test_a_version_3_store_gives_every_domain_an_incarnation(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store = open_store(f"sqlite:///{db}")
    with store.unit_of_work() as uow:
        uow.domains.add(DomainState("old1", 3, {"A": 1}), T0)
        uow.domains.add(DomainState("old2", 1, {"A": 2}), T0)
        uow.commit()
    store.dispose()
    raw = sqlite3.connect(db)
    raw.execute("DROP TABLE identities")
    raw.execute("DROP TABLE certificates")
    raw.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()
    upgraded = open_store(f"sqlite:///{db}")
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION
        with upgraded.unit_of_work() as uow:
            first = uow.credentials.incarnation("old1")
            second = uow.credentials.incarnation("old2")
            assert first is not None and second is not None and first != second
            assert len(first) == 16
            assert uow.credentials.issued() == []  # nothing issued before was recorded
    finally:
        upgraded.dispose()
