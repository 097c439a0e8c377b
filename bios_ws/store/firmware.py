"""The firmware update tables: each domain's inventory, its jobs (its update history), the
uploads under way, and the client one-time keys encrypted uploads have used.

A firmware class is kept as its uuid's text and a MonotonicCount (a uint64) as decimal
text: BIGINT is signed, and SQLite's NUMERIC would round a count above 2**63 to a REAL.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from bios_ws.domain.firmware_job import TERMINAL_STATES, ApplyTime, FirmwareJob, JobState
from bios_ws.domain.firmware_update import (
    UINT64_MAX,
    FirmwareEntry,
    FirmwareInventory,
    LastAttemptStatus,
    Slot,
)
from bios_ws.domain.firmware_upload import FirmwareUpload
from bios_ws.domain.ports import FirmwareRepository
from bios_ws.errors import StoreUnavailable
from bios_ws.store import schema
from bios_ws.store.codec import time_from_text, time_to_text
from bios_ws.store.engine import store_errors

if TYPE_CHECKING:
    from bios_ws.store.sql import SqlUnitOfWork

_inventory = schema.firmware_inventory
_jobs = schema.firmware_jobs
_uploads = schema.firmware_uploads
_chunks = schema.firmware_upload_chunks
_keys = schema.firmware_transfer_keys


class SqlFirmware(FirmwareRepository):
    def __init__(self, uow: SqlUnitOfWork) -> None:
        self._uow = uow

    def inventory(self, domain_id: str, *, for_update: bool = False
                  ) -> FirmwareInventory | None:
        conn = self._uow.connection(write=for_update)
        query = (select(_inventory).where(_inventory.c.domain_id == domain_id)
                 .order_by(_inventory.c.position))
        with store_errors():
            rows = conn.execute(query.with_for_update() if for_update else query).all()
        if not rows:
            return None
        try:
            return FirmwareInventory(tuple(_entry(row) for row in rows))
        except ValueError:
            raise _damaged(f"the firmware inventory of {domain_id!r}") from None

    def put_inventory(self, domain_id: str, inventory: FirmwareInventory) -> None:
        if not inventory.entries:  # stored as no rows, it would read back as None
            raise ValueError("an inventory has at least one firmware entry")
        conn = self._uow.connection(write=True)
        with store_errors():
            conn.execute(delete(_inventory).where(_inventory.c.domain_id == domain_id))
            conn.execute(insert(_inventory), [
                _entry_row(domain_id, position, entry)
                for position, entry in enumerate(inventory.entries)])

    def add_job(self, job: FirmwareJob) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            taken = conn.scalar(select(_jobs.c.job_id).where(_jobs.c.job_id == job.job_id))
            if taken is None:
                conn.execute(insert(_jobs).values(**_job_row(job)))
        if taken is not None:
            raise ValueError(f"firmware job {job.job_id} exists")

    def get_job(self, job_id: str, *, for_update: bool = False) -> FirmwareJob | None:
        conn = self._uow.connection(write=for_update)
        query = select(_jobs).where(_jobs.c.job_id == job_id)
        with store_errors():
            row = conn.execute(query.with_for_update() if for_update else query).one_or_none()
        return None if row is None else _job(row)

    def save_job(self, job: FirmwareJob) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            result = conn.execute(update(_jobs).where(_jobs.c.job_id == job.job_id)
                                  .values(**_job_row(job)))
        if result.rowcount != 1:
            raise KeyError(f"no firmware job {job.job_id}")

    def jobs(self, domain_id: str, *, limit: int = 100) -> list[FirmwareJob]:
        if limit <= 0:  # a negative LIMIT is no limit to SQLite
            return []
        query = (select(_jobs).where(_jobs.c.domain_id == domain_id)
                 .order_by(_jobs.c.created_at.desc(), _jobs.c.job_id.desc()).limit(limit))
        return self._jobs(query)

    def unfinished_jobs(self) -> list[FirmwareJob]:
        ended = sorted(state.value for state in TERMINAL_STATES)
        return self._jobs(select(_jobs).where(_jobs.c.state.not_in(ended))
                          .order_by(_jobs.c.created_at, _jobs.c.job_id))

    def _jobs(self, query: Select[Any]) -> list[FirmwareJob]:
        conn = self._uow.connection(write=False)
        with store_errors():
            rows = conn.execute(query).all()
        return [_job(row) for row in rows]

    def add_upload(self, upload: FirmwareUpload) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            taken = conn.scalar(select(_uploads.c.upload_id)
                                .where(_uploads.c.upload_id == upload.upload_id))
            if taken is None:
                conn.execute(insert(_uploads).values(**_upload_row(upload)))
        if taken is not None:
            raise ValueError(f"firmware upload {upload.upload_id} exists")

    def get_upload(self, upload_id: str, *, for_update: bool = False
                   ) -> FirmwareUpload | None:
        conn = self._uow.connection(write=for_update)
        query = select(_uploads).where(_uploads.c.upload_id == upload_id)
        with store_errors():
            row = conn.execute(query.with_for_update() if for_update else query).one_or_none()
        return None if row is None else _upload(row)

    def save_upload(self, upload: FirmwareUpload, expected_received: int) -> bool:
        conn = self._uow.connection(write=True)
        with store_errors():
            result = conn.execute(update(_uploads)
                                  .where(_uploads.c.upload_id == upload.upload_id)
                                  .where(_uploads.c.received == expected_received)
                                  .values(**_upload_row(upload)))
        return bool(result.rowcount == 1)

    def remove_upload(self, upload_id: str) -> bool:
        conn = self._uow.connection(write=True)
        with store_errors():
            conn.execute(delete(_chunks).where(_chunks.c.upload_id == upload_id))
            result = conn.execute(delete(_uploads).where(_uploads.c.upload_id == upload_id))
        return bool(result.rowcount == 1)

    def add_chunk(self, upload_id: str, offset: int, data: bytes) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            try:
                with conn.begin_nested():
                    conn.execute(insert(_chunks).values(upload_id=upload_id, offset=offset,
                                                        data=bytes(data)))
            except IntegrityError:
                raise ValueError(f"upload {upload_id} has a chunk at offset {offset}") from None

    def read_chunks(self, upload_id: str) -> bytes:
        conn = self._uow.connection(write=False)
        with store_errors():
            rows = conn.execute(select(_chunks.c.data).where(_chunks.c.upload_id == upload_id)
                                .order_by(_chunks.c.offset)).all()
        return b"".join(row.data for row in rows)

    def uploads(self, domain_id: str | None = None) -> list[FirmwareUpload]:
        conn = self._uow.connection(write=False)
        query = select(_uploads).order_by(_uploads.c.created_at, _uploads.c.upload_id)
        if domain_id is not None:
            query = query.where(_uploads.c.domain_id == domain_id)
        with store_errors():
            rows = conn.execute(query).all()
        return [_upload(row) for row in rows]

    def use_transfer_key(self, fingerprint: str, at: datetime) -> bool:
        """The insert runs in a savepoint: a used key fails it alone, not the unit. Correct
        under concurrent writers: SQLite's take turns (``BEGIN IMMEDIATE``); PostgreSQL's
        second insert waits on the key's index for the first and then fails."""
        conn = self._uow.connection(write=True)
        row = {"fingerprint": fingerprint, "used_at": time_to_text(at)}
        with store_errors():
            try:
                with conn.begin_nested():
                    conn.execute(insert(_keys).values(**row))
            except IntegrityError:  # the primary key: it was used before
                return False
        return True

    def forget_domain(self, domain_id: str) -> None:
        conn = self._uow.connection(write=True)
        with store_errors():
            conn.execute(delete(_chunks).where(_chunks.c.upload_id.in_(
                select(_uploads.c.upload_id).where(_uploads.c.domain_id == domain_id))))
            for table in (_inventory, _jobs, _uploads):
                conn.execute(delete(table).where(table.c.domain_id == domain_id))


def _count_text(count: int | None) -> str | None:
    return None if count is None else str(count)


def _count(text: str | None) -> int | None:
    """A stored uint64, decimal digits only (``int`` would take ``+1``, ``1_0``, spaces)."""
    if text is None:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > UINT64_MAX:
        raise ValueError("not a uint64")
    return int(text)


def _class_text(firmware_class: uuid.UUID | None) -> str | None:
    return None if firmware_class is None else str(firmware_class)


def _class(text: str | None) -> uuid.UUID | None:
    return None if text is None else uuid.UUID(text)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _entry_row(domain_id: str, position: int, entry: FirmwareEntry) -> dict[str, Any]:
    return {
        "domain_id": domain_id,
        "firmware_class": str(entry.firmware_class),
        "position": position,
        "fw_version": entry.fw_version,
        "lowest_supported_version": entry.lowest_supported_version,
        "last_monotonic_count": _count_text(entry.last_monotonic_count),
        "last_attempt_version": entry.last_attempt_version,
        "last_attempt_status": int(entry.last_attempt_status),
        "active_slot": entry.active_slot.value,
    }


def _entry(row: Any) -> FirmwareEntry:
    return FirmwareEntry(
        firmware_class=uuid.UUID(row.firmware_class),
        fw_version=int(row.fw_version),
        lowest_supported_version=int(row.lowest_supported_version),
        last_monotonic_count=_count(row.last_monotonic_count),
        last_attempt_version=int(row.last_attempt_version),
        last_attempt_status=LastAttemptStatus(row.last_attempt_status),
        active_slot=Slot(row.active_slot),
    )


def _job_row(job: FirmwareJob) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "domain_id": job.domain_id,
        "firmware_class": _class_text(job.firmware_class),
        "fw_version": job.fw_version,
        "monotonic_count": _count_text(job.monotonic_count),
        "apply_time": job.apply_time.value,
        "created_at": time_to_text(job.created_at),
        "updated_at": time_to_text(job.updated_at),
        "state": job.state.value,
        "percent_complete": job.percent_complete,
        "status": None if job.status is None else int(job.status),
        "message": job.message,
        "lowest_supported_version": job.lowest_supported_version,
        "slot": None if job.slot is None else job.slot.value,
        "from_version": job.from_version,
        "image_sha256": job.image_sha256,
        "capsule_sha256": job.capsule_sha256,
        "signer": job.signer,
        "principal": job.principal,
    }


def _job(row: Any) -> FirmwareJob:
    try:
        return FirmwareJob(
            job_id=str(row.job_id),
            domain_id=str(row.domain_id),
            firmware_class=_class(row.firmware_class),
            fw_version=_optional_int(row.fw_version),
            monotonic_count=_count(row.monotonic_count),
            apply_time=ApplyTime(row.apply_time),
            created_at=time_from_text(row.created_at),
            updated_at=time_from_text(row.updated_at),
            state=JobState(row.state),
            percent_complete=int(row.percent_complete),
            status=None if row.status is None else LastAttemptStatus(row.status),
            message=str(row.message),
            lowest_supported_version=_optional_int(row.lowest_supported_version),
            slot=None if row.slot is None else Slot(row.slot),
            from_version=_optional_int(row.from_version),
            image_sha256=str(row.image_sha256),
            capsule_sha256=str(row.capsule_sha256),
            signer=str(row.signer),
            principal=str(row.principal),
        )
    except ValueError:
        raise _damaged(f"the firmware job record {row.job_id!r}") from None


def _upload_row(upload: FirmwareUpload) -> dict[str, Any]:
    return {
        "upload_id": upload.upload_id,
        "domain_id": upload.domain_id,
        "principal": upload.principal,
        "size": upload.size,
        "sha256": upload.sha256,
        "created_at": time_to_text(upload.created_at),
        "expires_at": time_to_text(upload.expires_at),
        "received": upload.received,
        "wrapped_key": upload.wrapped_key,
    }


def _upload(row: Any) -> FirmwareUpload:
    try:
        return FirmwareUpload(
            upload_id=str(row.upload_id),
            domain_id=str(row.domain_id),
            principal=str(row.principal),
            size=int(row.size),
            sha256=str(row.sha256),
            created_at=time_from_text(row.created_at),
            expires_at=time_from_text(row.expires_at),
            received=int(row.received),
            wrapped_key=None if row.wrapped_key is None else bytes(row.wrapped_key),
        )
    except ValueError:
        raise _damaged(f"the firmware upload record {row.upload_id!r}") from None


def _damaged(what: str) -> StoreUnavailable:
    return StoreUnavailable(f"{what} is damaged")
