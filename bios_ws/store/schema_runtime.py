"""The thermal and events tables (schema version 7): each domain's thermal record, the
events and their pull subscriptions. They join ``schema.metadata``: ``bios_ws.store.schema``
imports this module at its end."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Double, Index, Integer, String, Table, Text

from bios_ws.store.schema import metadata

#: Version 7: each domain's ``ThermalRecord`` (the overrides as a JSON list).
thermal_state = Table(
    "thermal_state",
    metadata,
    Column("domain_id", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("temperature", Double, nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("cpu_seconds", Double, nullable=True),
    Column("load", Double, nullable=False),
    Column("level", String(16), nullable=False),
    *(Column(name, Double, nullable=False)
      for name in ("caution", "critical", "fatal", "hysteresis")),
    Column("overrides", Text, nullable=False),
)

#: Version 7: the events, numbered in commit order (``store.events``; SQLite AUTOINCREMENT
#: never gives an id again); ``scope`` (``domain.events.scope_of``) indexed with the id.
events = Table(
    "events",
    metadata,
    Column("event_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("time", String(40), nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("scope", String(64), nullable=False),
    Column("domain_id", String(64), nullable=True),
    Column("origin", String(256), nullable=False),
    Column("message_id", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("message_args", Text, nullable=False),  # a JSON list of strings
    Index("events_by_scope", "scope", "event_id"),
    Index("events_by_time", "time"),
    sqlite_autoincrement=True,
)

#: Version 7: the pull subscriptions that read the events.
event_subscriptions = Table(
    "event_subscriptions",
    metadata,
    Column("subscription_id", String(32), primary_key=True),
    Column("owner", Text, nullable=False),
    Column("domain_id", String(64), nullable=True, index=True),
    Column("event_types", Text, nullable=False),  # names, comma-separated; '' every type
    Column("created_at", String(40), nullable=False),
    Column("expires_at", String(40), nullable=False),
    Column("start_cursor", BigInteger, nullable=False),
)
