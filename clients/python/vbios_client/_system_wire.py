"""System-management answers (as ``_answers`` reads them) turned into vbios_client models.

Read by attribute name only, as ``_wire`` does: an optional field absent is None (an
absent string ""), and a response of one field is that field's value.
"""

from __future__ import annotations

from typing import Any

from vbios_client._wire import items, utc_time
from vbios_client.models import SelEntry, Smbios, SystemEventLog, WakeAlarm, Watchdog


def _text(wire: Any, name: str) -> str:
    value = getattr(wire, name, None)
    return "" if value is None else str(value)


def _time(value: Any) -> Any:
    return None if value in (None, "") else utc_time(str(value))


def smbios(response: Any) -> Smbios:
    bios, system = response.Bios, response.System
    board, chassis = response.Baseboard, response.Chassis
    return Smbios(
        bios_vendor=_text(bios, "Vendor"), bios_version=_text(bios, "Version"),
        bios_release_date=_text(bios, "ReleaseDate"),
        manufacturer=_text(system, "Manufacturer"), product_name=_text(system, "ProductName"),
        serial_number=_text(system, "SerialNumber"), uuid=_text(system, "Uuid"),
        sku_number=_text(system, "SkuNumber"), family=_text(system, "Family"),
        baseboard_manufacturer=_text(board, "Manufacturer"),
        baseboard_product_name=_text(board, "ProductName"),
        baseboard_serial_number=_text(board, "SerialNumber"),
        baseboard_asset_tag=_text(board, "AssetTag"),
        chassis_manufacturer=_text(chassis, "Manufacturer"),
        chassis_serial_number=_text(chassis, "SerialNumber"),
        chassis_asset_tag=_text(chassis, "AssetTag"))


def sel_entry(wire: Any) -> SelEntry:
    return SelEntry(
        id=int(wire.Id), domain=_text(wire, "Domain"), created=utc_time(str(wire.Created)),
        severity=_text(wire, "Severity"), message=_text(wire, "Message"),
        message_id=_text(wire, "MessageId"),
        message_args=tuple("" if arg is None else str(arg)
                           for arg in items(getattr(wire, "MessageArgs", None), "Arg")),
        sensor_type=_text(wire, "SensorType"), entry_code=_text(wire, "EntryCode"))


def event_log(response: Any) -> SystemEventLog:
    return SystemEventLog(
        max_entries=int(response.MaxNumberOfRecords),
        overwrite_policy=_text(response, "OverWritePolicy"),
        dropped_entries=int(response.DroppedEntries),
        entries=tuple(sel_entry(e) for e in items(response.Entries, "Entry")))


def wake_alarm(response: Any) -> WakeAlarm | None:
    """A WakeAlarm answer, or None for none (GetWakeAlarm without an alarm)."""
    if response is None:
        return None
    return WakeAlarm(wake_time=utc_time(str(response.WakeTime)), set_by=_text(response, "SetBy"),
                     set_at=utc_time(str(response.SetAt)))


def watchdog(response: Any) -> Watchdog:
    return Watchdog(
        enabled=bool(response.Enabled), timeout_seconds=int(response.TimeoutSeconds),
        last_pet=_time(getattr(response, "LastPet", None)),
        deadline=_time(getattr(response, "Deadline", None)),
        expirations=int(response.Expirations))
