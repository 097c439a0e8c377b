"""How `vbios-client sm` prints: SMBIOS, the event log, the wake alarm and the watchdog, as
aligned text for people or JSON for tools (times RFC 3339, UTC)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, TextIO

from vbios_client._cli_text import dump as _dump
from vbios_client._cli_text import utc_text
from vbios_client.models import SelEntry, Smbios, SystemEventLog, WakeAlarm, Watchdog


def _rows(out: TextIO, rows: dict[str, str]) -> None:
    width = max(len(name) for name in rows)
    out.write("".join(f"{name.ljust(width)} = {value}\n" for name, value in rows.items()))


def smbios(out: TextIO, found: Smbios, *, as_json: bool) -> None:
    if as_json:
        _dump(out, asdict(found))
        return
    sections = (
        ("BIOS (type 0)", {"vendor": found.bios_vendor, "version": found.bios_version,
                           "release date": found.bios_release_date}),
        ("System (type 1)", {"manufacturer": found.manufacturer,
                             "product": found.product_name, "serial": found.serial_number,
                             "uuid": found.uuid, "sku": found.sku_number,
                             "family": found.family}),
        ("Baseboard (type 2)", {"manufacturer": found.baseboard_manufacturer,
                                "product": found.baseboard_product_name,
                                "serial": found.baseboard_serial_number,
                                "asset tag": found.baseboard_asset_tag}),
        ("Chassis (type 3)", {"manufacturer": found.chassis_manufacturer,
                              "serial": found.chassis_serial_number,
                              "asset tag": found.chassis_asset_tag}),
    )
    for title, rows in sections:
        out.write(f"{title}\n")
        width = max(len(name) for name in rows)
        out.write("".join(f"  {name.ljust(width)} = {value or '-'}\n"
                          for name, value in rows.items()))


def entry_dict(entry: SelEntry) -> dict[str, Any]:
    return {"id": entry.id, "domain": entry.domain, "created": utc_text(entry.created),
            "severity": entry.severity, "message": entry.message,
            "message_id": entry.message_id, "message_args": list(entry.message_args),
            "sensor_type": entry.sensor_type, "entry_code": entry.entry_code}


def event_log(out: TextIO, log: SystemEventLog, *, as_json: bool) -> None:
    if as_json:
        _dump(out, {"max_entries": log.max_entries, "overwrite_policy": log.overwrite_policy,
                    "dropped_entries": log.dropped_entries,
                    "entries": [entry_dict(e) for e in log.entries]})
        return
    dropped = f", {log.dropped_entries} refused while full" if log.dropped_entries else ""
    out.write(f"# {len(log.entries)} of {log.max_entries} entries"
              f" ({log.overwrite_policy}{dropped})\n")
    for entry in log.entries:
        out.write(f"{entry.id:>6}  {utc_text(entry.created)}  {entry.severity:<8}"
                  f"  {entry.sensor_type}: {entry.message}\n")


def removed(out: TextIO, count: int, *, as_json: bool) -> None:
    if as_json:
        _dump(out, {"removed": count})
    else:
        out.write(f"{count} entries removed; the log holds its \"Log cleared\" entry\n")


def alarm(out: TextIO, found: WakeAlarm | None, *, as_json: bool) -> None:
    if as_json:
        _dump(out, None if found is None else {
            "wake_time": utc_text(found.wake_time), "set_by": found.set_by,
            "set_at": utc_text(found.set_at)})
    elif found is None:
        out.write("no wake alarm\n")
    else:
        _rows(out, {"wake time": str(utc_text(found.wake_time)), "set by": found.set_by,
                    "set at": str(utc_text(found.set_at))})


def cleared(out: TextIO, was_set: bool, *, as_json: bool) -> None:
    if as_json:
        _dump(out, {"cleared": was_set})
    else:
        out.write("wake alarm cleared\n" if was_set else "there was no wake alarm\n")


def watchdog(out: TextIO, found: Watchdog, *, as_json: bool) -> None:
    data = {"enabled": found.enabled, "timeout_seconds": found.timeout_seconds,
            "last_pet": utc_text(found.last_pet), "deadline": utc_text(found.deadline),
            "expirations": found.expirations}
    if as_json:
        _dump(out, data)
        return
    _rows(out, {"watchdog": "armed" if found.enabled else "disarmed",
                "timeout": f"{found.timeout_seconds} s",
                "last pet": str(data["last_pet"] or "-"),
                "resets at": str(data["deadline"] or "-"),
                "expirations": str(found.expirations)})
