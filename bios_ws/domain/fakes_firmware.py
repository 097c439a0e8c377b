"""The in-memory fake of the firmware repository (``bios_ws.domain.ports.FirmwareRepository``):
each domain's inventory, jobs and uploads with their chunks, and the used transfer keys.

Standard library only.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from bios_ws.domain.firmware_job import FirmwareJob
from bios_ws.domain.firmware_update import FirmwareInventory
from bios_ws.domain.firmware_upload import FirmwareUpload
from bios_ws.domain.ports import FirmwareRepository


@dataclasses.dataclass
class FirmwareData:
    inventories: dict[str, FirmwareInventory] = dataclasses.field(default_factory=dict)
    jobs: dict[str, FirmwareJob] = dataclasses.field(default_factory=dict)
    uploads: dict[str, FirmwareUpload] = dataclasses.field(default_factory=dict)
    transfer_keys: dict[str, datetime] = dataclasses.field(default_factory=dict)
    #: Each upload's chunks, by offset.
    chunks: dict[str, dict[int, bytes]] = dataclasses.field(default_factory=dict)

    def copy(self) -> FirmwareData:
        return FirmwareData(dict(self.inventories), dict(self.jobs), dict(self.uploads),
                            dict(self.transfer_keys),
                            {k: dict(v) for k, v in self.chunks.items()})


class MemoryFirmware(FirmwareRepository):
    def __init__(self, data: FirmwareData) -> None:
        self.data = data

    def inventory(self, domain_id: str, *, for_update: bool = False
                  ) -> FirmwareInventory | None:
        return self.data.inventories.get(domain_id)

    def put_inventory(self, domain_id: str, inventory: FirmwareInventory) -> None:
        if not inventory.entries:
            raise ValueError("an inventory has at least one firmware entry")
        self.data.inventories[domain_id] = inventory

    def add_job(self, job: FirmwareJob) -> None:
        if job.job_id in self.data.jobs:
            raise ValueError(f"firmware job {job.job_id} exists")
        self.data.jobs[job.job_id] = job

    def get_job(self, job_id: str, *, for_update: bool = False) -> FirmwareJob | None:
        return self.data.jobs.get(job_id)

    def save_job(self, job: FirmwareJob) -> None:
        if job.job_id not in self.data.jobs:
            raise KeyError(f"no firmware job {job.job_id}")
        self.data.jobs[job.job_id] = job

    def jobs(self, domain_id: str, *, limit: int = 100) -> list[FirmwareJob]:
        mine = [job for job in self.data.jobs.values() if job.domain_id == domain_id]
        mine.sort(key=lambda job: (job.created_at, job.job_id), reverse=True)
        return mine[:max(limit, 0)]

    def unfinished_jobs(self) -> list[FirmwareJob]:
        return sorted((job for job in self.data.jobs.values() if not job.finished),
                      key=lambda job: (job.created_at, job.job_id))

    def add_upload(self, upload: FirmwareUpload) -> None:
        if upload.upload_id in self.data.uploads:
            raise ValueError(f"firmware upload {upload.upload_id} exists")
        self.data.uploads[upload.upload_id] = upload

    def get_upload(self, upload_id: str, *, for_update: bool = False
                   ) -> FirmwareUpload | None:
        return self.data.uploads.get(upload_id)

    def save_upload(self, upload: FirmwareUpload, expected_received: int) -> bool:
        stored = self.data.uploads.get(upload.upload_id)
        if stored is None or stored.received != expected_received:
            return False
        self.data.uploads[upload.upload_id] = upload
        return True

    def remove_upload(self, upload_id: str) -> bool:
        self.data.chunks.pop(upload_id, None)
        return self.data.uploads.pop(upload_id, None) is not None

    def add_chunk(self, upload_id: str, offset: int, data: bytes) -> None:
        chunks = self.data.chunks.setdefault(upload_id, {})
        if offset in chunks:
            raise ValueError(f"upload {upload_id} has a chunk at offset {offset}")
        chunks[offset] = bytes(data)

    def read_chunks(self, upload_id: str) -> bytes:
        chunks = self.data.chunks.get(upload_id, {})
        return b"".join(chunks[offset] for offset in sorted(chunks))

    def uploads(self, domain_id: str | None = None) -> list[FirmwareUpload]:
        return sorted((u for u in self.data.uploads.values()
                       if domain_id is None or u.domain_id == domain_id),
                      key=lambda u: (u.created_at, u.upload_id))

    def use_transfer_key(self, fingerprint: str, at: datetime) -> bool:
        if fingerprint in self.data.transfer_keys:
            return False
        self.data.transfer_keys[fingerprint] = at
        return True

    def forget_domain(self, domain_id: str) -> None:
        data = self.data
        data.inventories.pop(domain_id, None)
        data.jobs = {k: job for k, job in data.jobs.items() if job.domain_id != domain_id}
        gone = {k for k, u in data.uploads.items() if u.domain_id == domain_id}
        data.uploads = {k: u for k, u in data.uploads.items() if k not in gone}
        data.chunks = {k: c for k, c in data.chunks.items() if k not in gone}
