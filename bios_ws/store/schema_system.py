"""The system-management tables (schema version 7): each domain's System Event Log (a
header and its entries), its RTC wake alarm and its OS watchdog. They join
``schema.metadata``: ``bios_ws.store.schema`` imports this module at its end."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, String, Table, Text

from bios_ws.store.schema import metadata

#: Version 7: each domain's System Event Log header: its ring's capacity and overwrite
#: policy, the last entry Id given (Ids are never reused), the entries a full log refused.
sel_logs = Table(
    "sel_logs",
    metadata,
    Column("domain_id", String(64), primary_key=True),
    Column("max_entries", Integer, nullable=False),
    Column("overwrite_policy", String(32), nullable=False),
    Column("last_id", BigInteger, nullable=False),
    Column("dropped", BigInteger, nullable=False),
)

#: Version 7: the entries of each domain's System Event Log (Redfish LogEntry fields).
sel_entries = Table(
    "sel_entries",
    metadata,
    Column("domain_id", String(64), primary_key=True),
    Column("entry_id", BigInteger, primary_key=True, autoincrement=False),
    Column("created", String(40), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message_id", String(128), nullable=False),
    Column("message", Text, nullable=False),
    Column("message_args", Text, nullable=False),  # a JSON array of strings
    Column("sensor_type", String(64), nullable=False),
    Column("entry_code", String(64), nullable=False),
)

#: Version 7: each domain's RTC wake alarm (one at most).
wake_alarms = Table(
    "wake_alarms",
    metadata,
    Column("domain_id", String(64), primary_key=True),
    Column("wake_at", String(40), nullable=False, index=True),
    Column("set_by", Text, nullable=False),
    Column("set_at", String(40), nullable=False),
    Column("version", BigInteger, nullable=False),
)

#: Version 7: each domain's OS watchdog.
watchdogs = Table(
    "watchdogs",
    metadata,
    Column("domain_id", String(64), primary_key=True),
    Column("enabled", Integer, nullable=False),
    Column("timeout_seconds", Integer, nullable=False),
    Column("last_pet", String(40), nullable=False),
    Column("set_by", Text, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("expirations", BigInteger, nullable=False),
)
