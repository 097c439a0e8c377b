"""Firmware update operations: a domain's inventory, its jobs and history (the guest's own;
the admin's naming a domain). Uploads are ``firmware_upload_service``."""

from __future__ import annotations

from typing import Any

from spyne import Service, Unicode

from bios_ws.service.firmware_update import FirmwareUpdateService
from bios_ws.soap.context import call_of
from bios_ws.soap.firmware_codec import inventory_out, job_out, jobs_out
from bios_ws.soap.firmware_types import FirmwareEntryList, FirmwareJob, FirmwareJobList
from bios_ws.soap.settings_service import SERVICE_NAME
from bios_ws.soap.types import operation, optional, required


class FirmwareSoapService(Service):  # type: ignore[misc]
    __service_name__ = SERVICE_NAME

    @operation(returns=required(FirmwareEntryList), names="Firmware")
    def GetFirmwareInventory(ctx: Any) -> Any:
        call = call_of(ctx)
        return inventory_out(call.use(FirmwareUpdateService).inventory(call.principal))

    @operation(required(Unicode), returns=required(FirmwareEntryList), names="Firmware")
    def GetDomainFirmwareInventory(ctx: Any, Domain: str) -> Any:
        call = call_of(ctx)
        return inventory_out(call.use(FirmwareUpdateService).inventory(call.principal,
                                                                       str(Domain)))

    @operation(optional(Unicode), returns=required(FirmwareJob), names="Job")
    def GetFirmwareJob(ctx: Any, JobId: str | None) -> Any:
        call = call_of(ctx)
        return job_out(call.use(FirmwareUpdateService).job(
            call.principal, None if JobId is None else str(JobId)))

    @operation(returns=required(FirmwareJobList), names="Jobs")
    def GetFirmwareHistory(ctx: Any) -> Any:
        call = call_of(ctx)
        return jobs_out(call.use(FirmwareUpdateService).history(call.principal))

    @operation(required(Unicode), returns=required(FirmwareJobList), names="Jobs")
    def GetDomainFirmwareHistory(ctx: Any, Domain: str) -> Any:
        call = call_of(ctx)
        return jobs_out(call.use(FirmwareUpdateService).history(call.principal, str(Domain)))
