"""Trusted firmware signers on SQLite and in memory alike (one contract); a version-4 store
upgrades in place (through version 5), its data kept and no signer trusted yet."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bios_ws.domain.firmware_trust import TrustedSigner, normalize_fingerprint
from bios_ws.domain.state import DomainState
from bios_ws.store import SCHEMA_VERSION, open_store

T0 = datetime(2026, 11, 1, 12, 0, 0, 654321, tzinfo=UTC)


def signer(der: bytes, *, added: datetime = T0) -> TrustedSigner:
    return TrustedSigner(fingerprint=hashlib.sha256(der).hexdigest(), der=der,
                         subject=f"CN=Signer {der.hex()[:8]}",
                         not_after=added + timedelta(days=365), added_at=added)


def test_a_signer_round_trips_with_every_field(store: Any) -> None:
    first = signer(b"\x30\x82\x00\x00first" + bytes(range(256)))
    second = signer(b"\x30second", added=T0 + timedelta(seconds=1))
    with store.unit_of_work() as uow:
        uow.firmware_trust.add(second)
        uow.firmware_trust.add(first)
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.firmware_trust.get(first.fingerprint) == first
        assert uow.firmware_trust.get("0" * 64) is None
        assert uow.firmware_trust.list() == [first, second]  # oldest first


def test_a_fingerprint_is_trusted_once(store: Any) -> None:
    one = signer(b"\x30one")
    with store.unit_of_work() as uow:
        uow.firmware_trust.add(one)
        uow.commit()
    with store.unit_of_work() as uow, pytest.raises(ValueError, match="already trusted"):
        uow.firmware_trust.add(signer(b"\x30one", added=T0 + timedelta(days=1)))
    with store.unit_of_work() as uow:
        assert uow.firmware_trust.list() == [one]


def test_remove_says_whether_it_was_trusted(store: Any) -> None:
    one, two = signer(b"\x30one"), signer(b"\x30two")
    with store.unit_of_work() as uow:
        uow.firmware_trust.add(one)
        uow.firmware_trust.add(two)
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.firmware_trust.remove(one.fingerprint) is True
        assert uow.firmware_trust.remove(one.fingerprint) is False
        assert uow.firmware_trust.remove("f" * 64) is False
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.firmware_trust.list() == [two]


def test_nothing_is_kept_without_commit(store: Any) -> None:
    with store.unit_of_work() as uow:
        uow.firmware_trust.add(signer(b"\x30lost"))
    with store.unit_of_work() as uow:
        assert uow.firmware_trust.list() == []


def test_fingerprints_are_normalized() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert normalize_fingerprint(digest.upper()) == digest
    colons = ":".join(digest[i:i + 2] for i in range(0, 64, 2))
    assert normalize_fingerprint(f" {colons} ") == digest
    assert normalize_fingerprint(digest[:-1]) is None
    assert normalize_fingerprint("cert.pem") is None


def test_a_version_4_store_upgrades_in_place_with_its_data(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store = open_store(f"sqlite:///{db}")
    with store.unit_of_work() as uow:
        uow.domains.add(DomainState("old1", 3, {"A": 1}), T0)
        uow.credentials.set_incarnation("old1", "0123456789abcdef")
        uow.commit()
    store.dispose()
    raw = sqlite3.connect(db)
    for table in ("firmware_trust", "firmware_inventory", "firmware_jobs",
                  "firmware_uploads", "firmware_transfer_keys"):  # versions 5 and 6
        raw.execute(f"DROP TABLE {table}")
    raw.execute("UPDATE meta SET value = '4' WHERE key = 'schema_version'")
    raw.commit()
    raw.close()
    upgraded = open_store(f"sqlite:///{db}")
    try:
        assert upgraded.schema_version() == SCHEMA_VERSION
        with upgraded.unit_of_work() as uow:
            uow.begin_writing()  # it reads, then writes
            assert uow.domains.get("old1").current == {"A": 1}
            assert uow.credentials.incarnation("old1") == "0123456789abcdef"
            assert uow.firmware_trust.list() == []
            uow.firmware_trust.add(signer(b"\x30new"))
            uow.commit()
        with upgraded.unit_of_work() as uow:
            assert len(uow.firmware_trust.list()) == 1
    finally:
        upgraded.dispose()
