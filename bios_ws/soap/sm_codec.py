"""Records of the system-management types for the response encoder, built from the use
case's values, and the one decoding the schema cannot do (a wake time)."""

from __future__ import annotations

from types import SimpleNamespace as Out
from typing import Any

from bios_ws.domain.sel import SelEntry, SelLog
from bios_ws.domain.smbios import SmbiosTables
from bios_ws.domain.timers import WakeAlarm
from bios_ws.service.system_management import EventLogView, WatchdogView
from bios_ws.soap.attestation_codec import iso

SMBIOS_NAMES = ("Bios", "System", "Baseboard", "Chassis")
LOG_NAMES = ("MaxNumberOfRecords", "OverWritePolicy", "DroppedEntries", "Entries")
POLICY_NAMES = ("MaxNumberOfRecords", "OverWritePolicy", "EntryCount", "DroppedEntries")


def smbios_out(tables: SmbiosTables) -> tuple[Any, ...]:
    bios, system = tables.bios, tables.system
    return (
        Out(Vendor=bios.vendor, Version=bios.version, ReleaseDate=bios.release_date_text),
        Out(Manufacturer=system.manufacturer, ProductName=system.product_name,
            SerialNumber=system.serial_number, Uuid=str(system.uuid),
            SkuNumber=system.sku_number or None, Family=system.family),
        Out(Manufacturer=tables.baseboard.manufacturer,
            ProductName=tables.baseboard.product_name,
            SerialNumber=tables.baseboard.serial_number,
            AssetTag=tables.baseboard.asset_tag or None),
        Out(Manufacturer=tables.chassis.manufacturer,
            SerialNumber=tables.chassis.serial_number,
            AssetTag=tables.chassis.asset_tag or None),
    )


def entry_out(entry: SelEntry) -> Any:
    return Out(Id=entry.entry_id, Domain=entry.domain_id, Created=iso(entry.created),
               Severity=entry.severity.value, Message=entry.message,
               MessageId=entry.message_id, MessageArgs=Out(Arg=list(entry.message_args)),
               SensorType=entry.sensor_type, EntryCode=entry.entry_code)


def event_log_out(view: EventLogView) -> tuple[Any, ...]:
    log = view.log
    return (log.policy.max_entries, log.policy.overwrite.value, log.dropped,
            Out(Entry=[entry_out(entry) for entry in view.entries]))


def policy_out(log: SelLog) -> tuple[Any, ...]:
    return log.policy.max_entries, log.policy.overwrite.value, log.entries, log.dropped


def alarm_out(alarm: WakeAlarm | None) -> Any:
    if alarm is None:
        return None
    return Out(WakeTime=iso(alarm.wake_at), SetBy=alarm.set_by, SetAt=iso(alarm.set_at))


def watchdog_out(view: WatchdogView) -> Any:
    return Out(Enabled=view.enabled, TimeoutSeconds=view.timeout_seconds,
               LastPet=None if view.last_pet is None else iso(view.last_pet),
               Deadline=None if view.deadline is None else iso(view.deadline),
               Expirations=view.expirations)
