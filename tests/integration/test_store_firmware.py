"""Firmware inventories, jobs, uploads and used transfer keys on SQLite and in memory alike
(one contract, the shared ``store`` fixture); then what only SQLite shows: concurrent
writers of one key, and damaged rows."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bios_ws.domain.firmware_job import ApplyTime, FirmwareJob, JobState
from bios_ws.domain.firmware_update import (
    SYSTEM_FIRMWARE_CLASS,
    UINT64_MAX,
    FirmwareEntry,
    FirmwareInventory,
    LastAttemptStatus,
    Slot,
    initial_inventory,
)
from bios_ws.domain.firmware_upload import UPLOAD_LIFETIME, FirmwareUpload
from bios_ws.errors import StoreUnavailable
from bios_ws.store import open_store

T0 = datetime(2026, 11, 1, 12, 0, 0, 654321, tzinfo=UTC)
OTHER_CLASS = uuid.UUID("0f5a4f43-8a5e-4b42-a2c3-6d0f2a1b9c77")
SHA_A, SHA_B = "a" * 64, "b" * 64


def job(job_id: str, domain_id: str = "vm1", created: datetime = T0,
        state: JobState = JobState.PENDING, **fields: Any) -> FirmwareJob:
    """A job of ``domain_id``; an ended one gets a status unless ``fields`` give one."""
    if state in (JobState.COMPLETED, JobState.FAILED, JobState.ROLLED_BACK):
        fields.setdefault("status", LastAttemptStatus.SUCCESS if state is JobState.COMPLETED
                          else LastAttemptStatus.UNSUCCESSFUL)
    values: dict[str, Any] = {
        "firmware_class": SYSTEM_FIRMWARE_CLASS, "fw_version": 2, "monotonic_count": 7,
        "apply_time": ApplyTime.ON_RESET, "created_at": created, "updated_at": created,
        "state": state, **fields}
    return FirmwareJob(job_id=job_id, domain_id=domain_id, **values)


def upload(upload_id: str, domain_id: str = "vm1", created: datetime = T0,
           **fields: Any) -> FirmwareUpload:
    values: dict[str, Any] = {"principal": "admin:root", "size": 4096, "sha256": SHA_A,
                              "created_at": created, "expires_at": created + UPLOAD_LIFETIME,
                              **fields}
    return FirmwareUpload(upload_id=upload_id, domain_id=domain_id, **values)


def write(store: Any, *steps: Any) -> None:
    """Run ``step(repository)`` for each step in one unit of work, and commit."""
    with store.unit_of_work() as uow:
        for step in steps:
            step(uow.firmware)
        uow.commit()


def read(store: Any, how: Any) -> Any:
    with store.unit_of_work() as uow:
        return how(uow.firmware)


# -- inventories ------------------------------------------------------------------------

def test_an_inventory_round_trips_every_field_in_its_order(store: Any) -> None:
    inventory = FirmwareInventory((
        FirmwareEntry(SYSTEM_FIRMWARE_CLASS, fw_version=0xFFFF_FFFF,
                      lowest_supported_version=3, last_monotonic_count=UINT64_MAX,
                      last_attempt_version=0xFFFF_FFFF,
                      last_attempt_status=LastAttemptStatus.AUTH_ERROR, active_slot=Slot.B),
        FirmwareEntry(OTHER_CLASS, fw_version=1, lowest_supported_version=0),  # count None
    ))
    assert read(store, lambda fw: fw.inventory("vm1")) is None
    write(store, lambda fw: fw.put_inventory("vm1", inventory),
          lambda fw: fw.put_inventory("vm2", initial_inventory()))
    assert read(store, lambda fw: fw.inventory("vm1")) == inventory
    assert read(store, lambda fw: fw.inventory("vm1", for_update=True)) == inventory
    assert read(store, lambda fw: fw.inventory("vm2")) == initial_inventory()


def test_put_inventory_replaces_the_whole_inventory(store: Any) -> None:
    two = FirmwareInventory((*initial_inventory().entries, FirmwareEntry(OTHER_CLASS, 5, 5)))
    write(store, lambda fw: fw.put_inventory("vm1", two))
    write(store, lambda fw: fw.put_inventory("vm1", initial_inventory()))
    assert read(store, lambda fw: fw.inventory("vm1")) == initial_inventory()
    with store.unit_of_work() as uow, pytest.raises(ValueError, match="at least one"):
        uow.firmware.put_inventory("vm1", FirmwareInventory(()))


# -- jobs -------------------------------------------------------------------------------

def test_a_job_round_trips_every_field(store: Any) -> None:
    full = job("j-full", state=JobState.COMPLETED, monotonic_count=UINT64_MAX,
               fw_version=0xFFFF_FFFF, apply_time=ApplyTime.IMMEDIATE,
               updated_at=T0 + timedelta(minutes=3), percent_complete=100,
               message="booted from slot B", lowest_supported_version=2, slot=Slot.B,
               from_version=1, image_sha256=SHA_A, capsule_sha256=SHA_B,
               signer="CN=Vendor,O=Example", principal="admin:root")
    # refused at once: the headers did not parse, so no class, version or count
    bare = job("j-bare", state=JobState.FAILED, firmware_class=None, fw_version=None,
               monotonic_count=None, status=LastAttemptStatus.INVALID_FORMAT,
               message="not a capsule")
    write(store, lambda fw: fw.add_job(full), lambda fw: fw.add_job(bare))
    assert read(store, lambda fw: fw.get_job("j-full")) == full
    assert read(store, lambda fw: fw.get_job("j-bare", for_update=True)) == bare
    assert read(store, lambda fw: fw.get_job("j-none")) is None
    stored = read(store, lambda fw: fw.get_job("j-bare"))
    assert (stored.slot, stored.lowest_supported_version, stored.from_version) == (None,) * 3


def test_jobs_are_newest_first_then_by_id_and_limited(store: Any) -> None:
    later = T0 + timedelta(microseconds=1)
    write(store, lambda fw: fw.add_job(job("j-a", created=T0)),
          lambda fw: fw.add_job(job("j-c", created=T0)),
          lambda fw: fw.add_job(job("j-b", created=later)),
          lambda fw: fw.add_job(job("j-z", created=T0 - timedelta(days=1))),
          lambda fw: fw.add_job(job("j-other", domain_id="vm2", created=later)))
    ids = read(store, lambda fw: [j.job_id for j in fw.jobs("vm1")])
    assert ids == ["j-b", "j-c", "j-a", "j-z"]
    assert read(store, lambda fw: [j.job_id for j in fw.jobs("vm1", limit=2)]) == ["j-b", "j-c"]
    assert read(store, lambda fw: fw.jobs("vm1", limit=0)) == []
    assert read(store, lambda fw: fw.jobs("vm1", limit=-1)) == []
    assert read(store, lambda fw: fw.jobs("nobody")) == []


def test_unfinished_jobs_are_every_domains_not_ended_oldest_first(store: Any) -> None:
    states = [JobState.RUNNING, JobState.COMPLETED, JobState.PENDING, JobState.FAILED,
              JobState.NEEDS_RESET, JobState.ROLLED_BACK, JobState.STAGED]
    jobs = [job(f"j{n}", domain_id=f"vm{n % 2}", created=T0 - timedelta(seconds=n),
                state=state) for n, state in enumerate(states)]
    write(store, *[(lambda fw, j=j: fw.add_job(j)) for j in jobs])
    unfinished = read(store, lambda fw: fw.unfinished_jobs())
    assert [j.job_id for j in unfinished] == ["j6", "j4", "j2", "j0"]
    assert unfinished[0] == jobs[6]


def test_save_job_replaces_a_known_job_only(store: Any) -> None:
    first = job("j1")
    write(store, lambda fw: fw.add_job(first))
    staged = dataclasses.replace(first, state=JobState.STAGED, percent_complete=40,
                                 slot=Slot.B, updated_at=T0 + timedelta(seconds=5))
    write(store, lambda fw: fw.save_job(staged))
    assert read(store, lambda fw: fw.get_job("j1")) == staged
    with store.unit_of_work() as uow, pytest.raises(KeyError):
        uow.firmware.save_job(job("j-unknown"))
    assert read(store, lambda fw: fw.get_job("j-unknown")) is None


def test_a_job_id_is_added_once(store: Any) -> None:
    first = job("j1")
    write(store, lambda fw: fw.add_job(first))
    with store.unit_of_work() as uow, pytest.raises(ValueError, match="exists"):
        uow.firmware.add_job(job("j1", domain_id="vm2", created=T0 + timedelta(days=1)))
    assert read(store, lambda fw: fw.get_job("j1")) == first


# -- uploads ----------------------------------------------------------------------------

def test_an_upload_round_trips_plain_and_encrypted(store: Any) -> None:
    plain = upload("0" * 32)
    sealed = upload("1" * 32, created=T0 + timedelta(seconds=1), size=32 * 1024 * 1024,
                    sha256=SHA_B, received=16, wrapped_key=bytes(range(60)))
    write(store, lambda fw: fw.add_upload(sealed), lambda fw: fw.add_upload(plain))
    assert read(store, lambda fw: fw.get_upload("0" * 32)) == plain
    assert read(store, lambda fw: fw.get_upload("0" * 32)).wrapped_key is None
    assert read(store, lambda fw: fw.get_upload("1" * 32, for_update=True)) == sealed
    assert read(store, lambda fw: fw.get_upload("2" * 32)) is None
    with store.unit_of_work() as uow, pytest.raises(ValueError, match="exists"):
        uow.firmware.add_upload(upload("0" * 32, domain_id="vm2"))


def test_uploads_are_oldest_first_of_one_domain_or_all(store: Any) -> None:
    write(store, lambda fw: fw.add_upload(upload("c" * 32, created=T0)),
          lambda fw: fw.add_upload(upload("a" * 32, created=T0 + timedelta(seconds=1))),
          lambda fw: fw.add_upload(upload("b" * 32, created=T0)),
          lambda fw: fw.add_upload(upload("d" * 32, domain_id="vm2", created=T0)))
    ids = read(store, lambda fw: [u.upload_id[0] for u in fw.uploads()])
    assert ids == ["b", "c", "d", "a"]
    assert read(store, lambda fw: [u.upload_id[0] for u in fw.uploads("vm1")]) == ["b", "c", "a"]
    assert read(store, lambda fw: fw.uploads("nobody")) == []


def test_save_upload_is_compare_and_set_on_received(store: Any) -> None:
    start = upload("0" * 32)
    write(store, lambda fw: fw.add_upload(start))
    one = start.received_chunk(1024, T0 + timedelta(minutes=1))
    two = one.received_chunk(1024, T0 + timedelta(minutes=2))
    with store.unit_of_work() as uow:
        assert uow.firmware.save_upload(one, expected_received=0) is True
        assert uow.firmware.save_upload(one, expected_received=0) is False  # a resend
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.firmware.save_upload(two, expected_received=0) is False
        assert uow.firmware.save_upload(upload("9" * 32), expected_received=0) is False
        assert uow.firmware.save_upload(two, expected_received=1024) is True
        uow.commit()
    assert read(store, lambda fw: fw.get_upload("0" * 32)) == two
    assert read(store, lambda fw: fw.get_upload("9" * 32)) is None


def test_remove_upload_says_whether_there_was_one(store: Any) -> None:
    write(store, lambda fw: fw.add_upload(upload("0" * 32)))
    with store.unit_of_work() as uow:
        assert uow.firmware.remove_upload("0" * 32) is True
        assert uow.firmware.remove_upload("0" * 32) is False
        uow.commit()
    assert read(store, lambda fw: fw.uploads()) == []


def test_chunks_read_back_in_offset_order_and_go_with_their_upload(store: Any) -> None:
    write(store, lambda fw: fw.add_upload(upload("0" * 32)),
          lambda fw: fw.add_upload(upload("1" * 32)))
    with store.unit_of_work() as uow:
        uow.firmware.add_chunk("0" * 32, 4, b"efgh")
        uow.firmware.add_chunk("0" * 32, 0, b"abcd")
        uow.firmware.add_chunk("1" * 32, 0, bytes(range(256)))
        with pytest.raises(ValueError, match="offset 4"):
            uow.firmware.add_chunk("0" * 32, 4, b"xxxx")
        uow.firmware.add_chunk("0" * 32, 8, b"i")  # the unit goes on after the refusal
        uow.commit()
    assert read(store, lambda fw: fw.read_chunks("0" * 32)) == b"abcdefghi"
    assert read(store, lambda fw: fw.read_chunks("9" * 32)) == b""
    write(store, lambda fw: fw.remove_upload("0" * 32))
    assert read(store, lambda fw: fw.read_chunks("0" * 32)) == b""
    assert read(store, lambda fw: fw.read_chunks("1" * 32)) == bytes(range(256))
    with store.unit_of_work() as uow:
        uow.firmware.add_chunk("1" * 32, 256, b"not kept")
    assert read(store, lambda fw: fw.read_chunks("1" * 32)) == bytes(range(256))


# -- transfer keys, rollback, forgetting a domain ----------------------------------------

def test_a_transfer_key_is_used_once(store: Any) -> None:
    with store.unit_of_work() as uow:
        assert uow.firmware.use_transfer_key(SHA_A, T0) is True
        assert uow.firmware.use_transfer_key(SHA_A, T0) is False  # the unit goes on
        assert uow.firmware.use_transfer_key(SHA_B, T0) is True
        uow.firmware.add_job(job("j1"))
        uow.commit()
    with store.unit_of_work() as uow:
        assert uow.firmware.use_transfer_key(SHA_A, T0 + timedelta(days=1)) is False
        assert uow.firmware.use_transfer_key(SHA_B, T0) is False
    assert read(store, lambda fw: fw.get_job("j1")) == job("j1")


def test_nothing_is_kept_without_commit(store: Any) -> None:
    write(store, lambda fw: fw.add_upload(upload("0" * 32)))
    with store.unit_of_work() as uow:
        uow.firmware.put_inventory("vm1", initial_inventory())
        uow.firmware.add_job(job("j1"))
        uow.firmware.add_upload(upload("1" * 32))
        assert uow.firmware.remove_upload("0" * 32) is True
        assert uow.firmware.use_transfer_key(SHA_A, T0) is True
    with store.unit_of_work() as uow:
        uow.begin_writing()  # it reads, then writes
        assert uow.firmware.inventory("vm1") is None
        assert uow.firmware.get_job("j1") is None
        assert [u.upload_id for u in uow.firmware.uploads()] == ["0" * 32]
        assert uow.firmware.use_transfer_key(SHA_A, T0) is True


def test_forget_domain_removes_its_inventory_jobs_and_uploads_only(store: Any) -> None:
    for domain in ("vm1", "vm2"):
        write(store, lambda fw, d=domain: fw.put_inventory(d, initial_inventory()),
              lambda fw, d=domain: fw.add_job(job(f"j-{d}", domain_id=d, state=JobState.STAGED)),
              lambda fw, d=domain: fw.add_upload(upload(d[-1] * 32, domain_id=d)),
              lambda fw, d=domain: fw.add_chunk(d[-1] * 32, 0, d.encode()))
    write(store, lambda fw: fw.use_transfer_key(SHA_A, T0),
          lambda fw: fw.forget_domain("vm1"), lambda fw: fw.forget_domain("nobody"))
    with store.unit_of_work() as uow:
        uow.begin_writing()  # it reads, then writes
        fw = uow.firmware
        assert (fw.inventory("vm1"), fw.jobs("vm1"), fw.uploads("vm1")) == (None, [], [])
        assert fw.get_job("j-vm1") is None and fw.get_upload("1" * 32) is None
        assert [j.job_id for j in fw.unfinished_jobs()] == ["j-vm2"]
        assert fw.inventory("vm2") == initial_inventory()
        assert [u.domain_id for u in fw.uploads()] == ["vm2"]
        assert (fw.read_chunks("1" * 32), fw.read_chunks("2" * 32)) == (b"", b"vm2")
        assert fw.use_transfer_key(SHA_A, T0) is False  # keys are not the domain's


# -- SQLite only -------------------------------------------------------------------------

def test_concurrent_writers_use_each_key_once(tmp_path: Path) -> None:
    """Two stores on one file (as two processes), a thread each, the same keys: every key is
    used once, and each writer's own unit goes on after a replay."""
    url = f"sqlite:///{tmp_path / 'vbios.db'}"
    stores = [open_store(url), open_store(url)]
    keys = [f"{n:064x}" for n in range(40)]
    firsts: list[list[str]] = [[], []]
    start = threading.Barrier(2)

    def writer(n: int) -> None:
        start.wait()
        for key in keys:
            with stores[n].unit_of_work() as uow:
                if uow.firmware.use_transfer_key(key, T0):
                    firsts[n].append(key)
                uow.firmware.add_job(job(f"w{n}-{key}"))
                uow.commit()

    threads = [threading.Thread(target=writer, args=(n,)) for n in (0, 1)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert sorted(firsts[0] + firsts[1]) == keys
        with stores[0].unit_of_work() as uow:
            assert len(uow.firmware.unfinished_jobs()) == 2 * len(keys)
    finally:
        for store in stores:
            store.dispose()


@pytest.mark.parametrize("column, value", [
    ("monotonic_count", "18446744073709551616"), ("monotonic_count", "-1"),
    ("monotonic_count", " 7"), ("state", "Lost"), ("firmware_class", "not-a-uuid")])
def test_a_damaged_job_row_is_store_unavailable(tmp_path: Path, column: str,
                                                value: str) -> None:
    db = tmp_path / "vbios.db"
    store = open_store(f"sqlite:///{db}")
    try:
        write(store, lambda fw: fw.add_job(job("j1", monotonic_count=UINT64_MAX)))
        raw = sqlite3.connect(db)
        assert raw.execute("SELECT monotonic_count FROM firmware_jobs").fetchone() == (
            str(UINT64_MAX),)
        raw.execute(f"UPDATE firmware_jobs SET {column} = ?", (value,))
        raw.commit()
        raw.close()
        with pytest.raises(StoreUnavailable, match="damaged"):
            read(store, lambda fw: fw.get_job("j1"))
    finally:
        store.dispose()
