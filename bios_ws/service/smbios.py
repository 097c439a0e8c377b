"""A domain's SMBIOS tables from the store: its settings, its firmware inventory and the
day that firmware was installed (``bios_ws.domain.smbios`` says what goes where).

``read_smbios`` serves ``GetSmbios`` (the firmware the domain runs) and the plan of
every boot (``MachineObserver.before_boot``: the slot it boots, a trial's new version
included, so that the guest's tables name the firmware it really runs).
"""

from __future__ import annotations

from datetime import date

from bios_ws.domain.firmware import SlotBoot
from bios_ws.domain.firmware_job import JobState
from bios_ws.domain.firmware_update import SYSTEM_FIRMWARE_CLASS, bios_version, initial_inventory
from bios_ws.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from bios_ws.domain.smbios import SmbiosTables, smbios_for


def read_smbios(uow: UnitOfWorkFactory, clock: Clock, domain_id: str,
                slot: SlotBoot | None = None) -> SmbiosTables:
    """The tables of ``domain_id`` (DomainNotFound if none), for a boot of ``slot`` when
    given: a trial shows its new version, released today."""
    with uow() as unit:
        values = unit.domains.get(domain_id).current
        entry = (unit.firmware.inventory(domain_id) or initial_inventory()).entry(
            SYSTEM_FIRMWARE_CLASS)
        assert entry is not None  # every inventory has the system firmware
        if slot is not None and slot.trial:
            version, released = slot.bios_version, clock().date()
        else:
            version = bios_version(entry.fw_version) if slot is None else slot.bios_version
            released = _installed_on(unit, domain_id, entry.fw_version, clock)
    return smbios_for(domain_id, values, version, released)


def _installed_on(unit: UnitOfWork, domain_id: str, fw_version: int, clock: Clock) -> date:
    """The day the domain's firmware ``fw_version`` was installed: its completed update's,
    else (the installation's image) the day the domain was created."""
    for job in unit.firmware.jobs(domain_id):
        if job.state is JobState.COMPLETED and job.fw_version == fw_version:
            return job.updated_at.date()
    for summary in unit.domains.list():
        if summary.domain_id == domain_id:
            return summary.created_at.date()
    return clock().date()
