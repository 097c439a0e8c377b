"""The schema, version by version: an explicit list of migrations run on SQLite and PostgreSQL.

Each migration brings a store from the version before it to its own: it creates the
tables of its version (``schema``) and fills them from the data already there. It is
a function of the connection (inside the caller's transaction, which holds the
schema's lock) and of the dialect's name, for the rare statement one back end needs.

When a store is opened (``store.sql.open_store``):

- no schema yet: every migration runs (a new store);
- the schema this code knows: nothing runs, but the audit table's append-only
  triggers are checked and put back if someone dropped them;
- newer than this code: refused (``StoreUnavailable``: upgrade vbios);
- older: SQLite upgrades in place (one host owns the file, as before); PostgreSQL,
  shared by a fleet whose other servers may still run the older code, is refused
  until the admin runs ``vbios store upgrade`` (``upgrade``), deliberately.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection, Table, inspect, select, text

from bios_ws.domain.audit import scope_of
from bios_ws.errors import StoreUnavailable
from bios_ws.store import schema, schema_runtime, schema_system

Step = Callable[[Connection, str], None]
SQLITE = "sqlite"
POSTGRESQL = "postgresql"
#: The key of PostgreSQL's transaction-scoped advisory lock that serialises schema work.
SCHEMA_LOCK_KEY = 7406381
_APPEND_ONLY = "audit log is append-only"


@dataclass(frozen=True)
class Migration:
    """What brings a store from ``version - 1`` to ``version``."""

    version: int
    summary: str
    tables: tuple[Table, ...]
    fill: Step | None = None

    def apply(self, conn: Connection, dialect: str) -> None:
        for table in self.tables:
            table.create(conn, checkfirst=True)
        if self.fill is not None:
            self.fill(conn, dialect)


def _audit_append_only(conn: Connection, dialect: str) -> None:
    """Triggers refusing UPDATE and DELETE (and TRUNCATE on PostgreSQL) of audit rows."""
    for statement in _APPEND_ONLY_DDL[dialect]:
        conn.exec_driver_sql(statement)


_APPEND_ONLY_DDL: dict[str, tuple[str, ...]] = {
    SQLITE: (
        "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit "
        f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END",
        "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit "
        f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END",
    ),
    # PostgreSQL 14+ (CREATE OR REPLACE TRIGGER)
    POSTGRESQL: (
        "CREATE OR REPLACE FUNCTION vbios_audit_append_only() RETURNS trigger "
        f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{_APPEND_ONLY}'; END $$",
        "CREATE OR REPLACE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit "
        "FOR EACH ROW EXECUTE FUNCTION vbios_audit_append_only()",
        "CREATE OR REPLACE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
        "FOR EACH STATEMENT EXECUTE FUNCTION vbios_audit_append_only()",
    ),
}
_TRIGGERS = {SQLITE: ("audit_no_update", "audit_no_delete"),
             POSTGRESQL: ("audit_no_change", "audit_no_truncate")}


def _first_rows(conn: Connection, dialect: str) -> None:
    """Version 1: the meta rows (the version is written by ``_run``) and the audit guard."""
    conn.execute(schema.meta.insert(), [{"key": schema.AUDIT_LOCK_KEY, "value": ""}])
    _audit_append_only(conn, dialect)


def _machines_for_existing_domains(conn: Connection, dialect: str) -> None:
    """Version 2: every domain made before machines existed gets a simulated one, off."""
    machines, domains = schema.machines, schema.domains
    existing = set(conn.scalars(select(machines.c.domain_id)))
    rows = [
        {"domain_id": domain_id, "kind": "simulated", "version": 1, "power_state": "Off",
         "last_reset_cause": None, "last_reset_time": None, "delivered_boot_next": None,
         "secure_boot_current": "Unknown"}
        for domain_id in conn.scalars(select(domains.c.domain_id))
        if domain_id not in existing
    ]
    if rows:
        conn.execute(machines.insert(), rows)


_SCOPE_PAGE = 1000


def _scopes_for_existing_entries(conn: Connection, dialect: str) -> None:
    """Version 3: every audit entry written before gets its scope."""
    audit, audit_scope = schema.audit, schema.audit_scope
    after = conn.scalar(select(audit_scope.c.seq).order_by(audit_scope.c.seq.desc()).limit(1))
    after = 0 if after is None else int(after)
    while True:
        rows = conn.execute(
            select(audit.c.seq, audit.c.principal, audit.c.domain_id)
            .where(audit.c.seq > after).order_by(audit.c.seq).limit(_SCOPE_PAGE)
        ).all()
        if not rows:
            return
        conn.execute(audit_scope.insert(), [
            {"seq": int(row.seq), "scope": scope_of(row.principal, row.domain_id)}
            for row in rows
        ])
        after = int(rows[-1].seq)


def _incarnations_for_existing_domains(conn: Connection, dialect: str) -> None:
    """Version 4: every domain made before incarnations existed starts one. Certificates
    issued before were not recorded: none of them counts any more (issue new bundles)."""
    identities = schema.identities
    existing = set(conn.scalars(select(identities.c.domain_id)))
    rows = [{"domain_id": domain_id, "incarnation": secrets.token_hex(8)}
            for domain_id in conn.scalars(select(schema.domains.c.domain_id))
            if domain_id not in existing]
    if rows:
        conn.execute(identities.insert(), rows)


def _machines_host_column(conn: Connection, dialect: str) -> None:
    """Version 8: machines get their host (a store made at version 2 or later has the
    table without it; one made now already has it from version 2)."""
    if "host" not in {column["name"] for column in inspect(conn).get_columns("machines")}:
        conn.exec_driver_sql("ALTER TABLE machines ADD COLUMN host VARCHAR(40)")


def _routing_migration(version: int) -> Migration:
    """Remotes and routes (issue 18, the local side): two tables that start empty (every
    capability served here). One function, so its number is one argument to change."""
    return Migration(version, "remote installations and the routes to them",
                     (schema.remotes, schema.routes))


#: Every version, in order. Versions 5 to 7, 9 and 10 add tables that start empty: no trusted
#: firmware signer; every domain has its initial firmware inventory until an update puts
#: one, and no job, upload or used key; every domain has an empty System Event Log of the
#: default policy, no wake alarm, no watchdog, no thermal record until its first
#: evaluation; no event and no subscription; no host may speak for any domain.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "domains, host records and the append-only audit log",
              (schema.meta, schema.domains, schema.audit, schema.host_records), _first_rows),
    Migration(2, "each domain's machine", (schema.machines,), _machines_for_existing_domains),
    Migration(3, "the audit entries' scopes and the refusal windows",
              (schema.audit_scope, schema.audit_refusals), _scopes_for_existing_entries),
    Migration(4, "incarnations, certificates and enrollment tickets",
              (schema.identities, schema.certificates, schema.enrollment_tickets),
              _incarnations_for_existing_domains),
    Migration(5, "trusted firmware signers", (schema.firmware_trust,)),
    Migration(6, "firmware inventories, update jobs and uploads",
              (schema.firmware_inventory, schema.firmware_jobs, schema.firmware_uploads,
               schema.firmware_upload_chunks, schema.firmware_transfer_keys)),
    Migration(7, "System Event Logs, timers, thermal records and events",
              (schema_system.sel_logs, schema_system.sel_entries, schema_system.wake_alarms,
               schema_system.watchdogs, schema_runtime.thermal_state, schema_runtime.events,
               schema_runtime.event_subscriptions)),
    Migration(8, "the hosts sharing the store, and the host of each machine",
              (schema.hosts,), _machines_host_column),
    Migration(9, "the domains each host holding a host certificate may speak for",
              (schema.host_grants,)),
    _routing_migration(10),
)
LATEST = MIGRATIONS[-1].version


@dataclass(frozen=True)
class SchemaStatus:
    """What a store holds against what this code knows."""

    found: int | None  # None: no schema yet
    known: int = LATEST

    @property
    def pending(self) -> tuple[Migration, ...]:
        start = 0 if self.found is None else self.found
        return tuple(m for m in MIGRATIONS if m.version > start)

    @property
    def too_new(self) -> bool:
        return self.found is not None and self.found > self.known


def read_schema_version(conn: Connection) -> int | None:
    """The recorded version, or None for a database without our tables."""
    if not inspect(conn).has_table("meta"):
        return None
    value = conn.scalar(select(schema.meta.c.value)
                        .where(schema.meta.c.key == schema.SCHEMA_VERSION_KEY))
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise StoreUnavailable(f"the state store records an invalid schema version {value!r}")\
            from None


def status(conn: Connection) -> SchemaStatus:
    return SchemaStatus(read_schema_version(conn))


def ensure_schema(conn: Connection, *, upgrade: bool | None = None) -> int:
    """Create, check or upgrade the schema in the caller's transaction (see the module).

    ``upgrade``: run the pending migrations of an older store (``vbios store upgrade``:
    True); None: the back end's default (SQLite yes, PostgreSQL no)."""
    dialect = conn.dialect.name
    _lock_schema(conn, dialect)
    found = status(conn)
    if found.too_new:
        raise StoreUnavailable(
            f"the state store has schema version {found.found}, newer than this vbios "
            f"understands ({LATEST}): upgrade vbios"
        )
    upgrades_here = dialect == SQLITE if upgrade is None else upgrade
    if found.found is not None and found.pending and not upgrades_here:
        raise StoreUnavailable(
            f"the state store has schema version {found.found}, older than this vbios"
            f" needs ({LATEST}): run vbios store upgrade")
    for migration in found.pending:
        migration.apply(conn, dialect)
        _record_version(conn, migration.version)
    if found.found is not None:
        _check_append_only(conn, dialect)
    return LATEST


def _record_version(conn: Connection, version: int) -> None:
    meta = schema.meta
    done = conn.execute(meta.update().where(meta.c.key == schema.SCHEMA_VERSION_KEY)
                        .values(value=str(version)))
    if done.rowcount == 0:
        conn.execute(meta.insert().values(key=schema.SCHEMA_VERSION_KEY, value=str(version)))


def _check_append_only(conn: Connection, dialect: str) -> None:
    """Put the audit triggers back if any was dropped (on PostgreSQL only then: creating
    them locks the audit table against the fleet's appends)."""
    if dialect == POSTGRESQL:
        present = conn.scalar(text(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit'::regclass"
            " AND tgname = ANY(:names) AND tgenabled <> 'D'"),
            {"names": list(_TRIGGERS[POSTGRESQL])})
        if present == len(_TRIGGERS[POSTGRESQL]):
            return
    _audit_append_only(conn, dialect)


def _lock_schema(conn: Connection, dialect: str) -> None:
    # SQLite is already write-locked (BEGIN IMMEDIATE); PostgreSQL serialises concurrent
    # schema work with a transaction-scoped advisory lock.
    if dialect == POSTGRESQL:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
