"""The tables, and the schema version this code reads and writes.

Portable SQLAlchemy Core. How a store gets these tables, version by version, and the
append-only guard of the audit table: ``store.migrations``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

#: The schema this code reads and writes (the last of ``migrations.MIGRATIONS``). A
#: database at a newer version is refused; an older one is upgraded (``store.migrations``).
SCHEMA_VERSION = 10

#: meta keys
SCHEMA_VERSION_KEY = "schema_version"
AUDIT_LOCK_KEY = "audit_lock"  # a row locked FOR UPDATE to serialize audit appends
EVENTS_PRUNED_KEY = "events_pruned_through"  # the largest event id retention removed

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

domains = Table(
    "domains",
    metadata,
    Column("domain_id", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("state", Text, nullable=False),
)

audit = Table(
    "audit",
    metadata,
    # INTEGER PRIMARY KEY on SQLite (the rowid), BIGINT elsewhere; seq is always given.
    Column(
        "seq",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("time", String(40), nullable=False),
    Column("principal", Text, nullable=False),
    Column("operation", String(64), nullable=False),
    Column("domain_id", String(64), nullable=True),
    Column("outcome", String(128), nullable=False),
    Column("changes_digest", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
)

#: Version 3: which guest may see each audit entry (``audit.scope_of``: a domain id, or
#: '' for host-wide), indexed so that a guest's entries are found without reading the
#: others'. Beside the append-only ``audit`` table, which stays as it was.
audit_scope = Table(
    "audit_scope",
    metadata,
    Column(
        "seq",
        BigInteger().with_variant(Integer, "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("scope", String(64), nullable=False),
    Index("audit_scope_by_scope", "scope", "seq"),
)

#: Version 3: the open refusal windows of the audit log's limit (``audit_limit``).
audit_refusals = Table(
    "audit_refusals",
    metadata,
    Column("principal", Text, primary_key=True),
    Column("started", String(40), nullable=False),
    Column("written", Integer, nullable=False),
    Column("counted", BigInteger, nullable=False),
    Column("first_counted", String(40), nullable=True),
    Column("last_counted", String(40), nullable=True),
)

#: Version 2: each domain's machine (kind and power), apart from its settings.
machines = Table(
    "machines",
    metadata,
    Column("domain_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("power_state", String(16), nullable=False),
    Column("last_reset_cause", String(32), nullable=True),
    Column("last_reset_time", String(40), nullable=True),
    Column("delivered_boot_next", String(64), nullable=True),
    Column("secure_boot_current", String(16), nullable=False, server_default="Unknown"),
    #: Version 8: the host that runs the machine (NULL: a store from before hosts, until
    #: its first host registers and claims it).
    Column("host", String(40), nullable=True),
)

#: Version 8: the hosts sharing this store (``domain.hosts``).
hosts = Table(
    "hosts",
    metadata,
    Column("name", String(40), primary_key=True),
    Column("ca_fingerprint", String(64), nullable=False),
    Column("tpm", Text, nullable=False),
    Column("registered_at", String(40), nullable=False),
    Column("started_at", String(40), nullable=True),
)

#: Version 10 (routing): each host's remote installations and its credential there (the
#: certificate and the remote's CA; the key stays in the home, encrypted), and its routes.
remotes = Table(
    "remotes",
    metadata,
    Column("host", String(40), primary_key=True),
    Column("name", String(40), primary_key=True),
    Column("url", Text, nullable=False),
    Column("cert_pem", LargeBinary, nullable=False),
    Column("ca_pem", LargeBinary, nullable=False),
)

#: Version 10 (routing): ``domain`` '' is every domain (a primary key has no NULL).
routes = Table(
    "routes",
    metadata,
    Column("host", String(40), primary_key=True),
    Column("capability", String(40), primary_key=True),
    Column("domain", String(64), primary_key=True),
    Column("target", String(40), nullable=False),
    #: How old an answer of the remote may be when it is served from this host's cache,
    #: in seconds, while the remote is unavailable (NULL: never; ``vbios route set --cache``).
    Column("cache_seconds", Integer, nullable=True),
)

host_records = Table(
    "host_records",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("value", Text, nullable=False),
)

#: Version 4: each domain's current incarnation, and every client certificate issued.
identities = Table(
    "identities",
    metadata,
    Column("domain_id", String(64), primary_key=True),
    Column("incarnation", String(32), nullable=False),
)

certificates = Table(
    "certificates",
    metadata,
    Column("serial", String(42), primary_key=True),  # hex, upper case
    Column("role", String(16), nullable=False),
    Column("domain_id", String(64), nullable=True, index=True),
    Column("incarnation", String(32), nullable=True),
    Column("subject", Text, nullable=False),
    Column("not_before", String(40), nullable=False),
    Column("not_after", String(40), nullable=False),
    Column("issued_at", String(40), nullable=False),
    Column("revoked_at", String(40), nullable=True),
    Column("reason", String(32), nullable=True),
    #: A renewal's predecessor, revoked when this certificate is first used.
    Column("replaces", String(42), nullable=True),
)

#: Version 9: which domains each host holding a host certificate may speak for
#: (``vbios host add H --domains D1,D2``; ``docs/remote.md``). The host's certificates
#: are in ``certificates`` (role ``host``, the host's name as subject).
host_grants = Table(
    "host_grants",
    metadata,
    Column("host", String(40), primary_key=True),
    Column("domain_id", String(64), primary_key=True),
    Column("granted_at", String(40), nullable=False),
    Index("host_grants_by_domain", "domain_id"),
)

#: Version 4: the bootstrap URIs made for enrollment, each usable once.
enrollment_tickets = Table(
    "enrollment_tickets",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("domain_id", String(64), nullable=False),
    Column("incarnation", String(32), nullable=False),
    Column("expires_at", String(40), nullable=False),
    Column("used_at", String(40), nullable=True),
)

#: Version 5: the signer certificates the admin trusts for firmware capsules.
firmware_trust = Table(
    "firmware_trust",
    metadata,
    Column("fingerprint", String(64), primary_key=True),  # SHA-256 of der, lower-case hex
    Column("der", LargeBinary, nullable=False),
    Column("subject", Text, nullable=False),
    Column("not_after", String(40), nullable=False),
    Column("added_at", String(40), nullable=False),
)

#: Version 6: each domain's firmware inventory, one row per firmware class (ESRT entry),
#: in the inventory's order (``position``). A MonotonicCount is a uint64: kept as decimal
#: text, since BIGINT is signed and SQLite's NUMERIC would round it to a REAL.
firmware_inventory = Table(
    "firmware_inventory",
    metadata,
    Column("domain_id", String(64), primary_key=True),
    Column("firmware_class", String(36), primary_key=True),  # uuid, lower-case text
    Column("position", Integer, nullable=False),
    Column("fw_version", BigInteger, nullable=False),
    Column("lowest_supported_version", BigInteger, nullable=False),
    Column("last_monotonic_count", String(20), nullable=True),  # uint64, decimal
    Column("last_attempt_version", BigInteger, nullable=False),
    Column("last_attempt_status", Integer, nullable=False),  # ESRT code
    Column("active_slot", String(1), nullable=False),
)

#: Version 6: every firmware update job of every domain (its update history).
firmware_jobs = Table(
    "firmware_jobs",
    metadata,
    Column("job_id", String(64), primary_key=True),
    Column("domain_id", String(64), nullable=False),
    Column("firmware_class", String(36), nullable=True),
    Column("fw_version", BigInteger, nullable=True),
    Column("monotonic_count", String(20), nullable=True),  # uint64, decimal
    Column("apply_time", String(16), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("updated_at", String(40), nullable=False),
    Column("state", String(16), nullable=False),
    Column("percent_complete", Integer, nullable=False),
    Column("status", Integer, nullable=True),  # ESRT code, once ended
    Column("message", Text, nullable=False),
    Column("lowest_supported_version", BigInteger, nullable=True),
    Column("slot", String(1), nullable=True),
    Column("from_version", BigInteger, nullable=True),
    Column("image_sha256", String(64), nullable=False),
    Column("capsule_sha256", String(64), nullable=False),
    Column("signer", Text, nullable=False),
    Column("principal", Text, nullable=False),
    Index("firmware_jobs_by_domain", "domain_id", "created_at"),
)

#: Version 6: the capsule uploads under way (their bytes in firmware_upload_chunks).
firmware_uploads = Table(
    "firmware_uploads",
    metadata,
    Column("upload_id", String(32), primary_key=True),
    Column("domain_id", String(64), nullable=False, index=True),
    Column("principal", Text, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("expires_at", String(40), nullable=False),
    Column("received", BigInteger, nullable=False),
    Column("wrapped_key", LargeBinary, nullable=True),  # None: not encrypted
)

#: Version 6: the bytes of the uploads under way, one row per chunk.
firmware_upload_chunks = Table(
    "firmware_upload_chunks",
    metadata,
    Column("upload_id", String(32), primary_key=True),
    Column("offset", BigInteger, primary_key=True, autoincrement=False),
    Column("data", LargeBinary, nullable=False),
)

#: Version 6: the client one-time public keys encrypted uploads have used (SHA-256, hex).
firmware_transfer_keys = Table(
    "firmware_transfer_keys",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    Column("used_at", String(40), nullable=False),
)

# The system-management, thermal and events tables (version 7) join ``metadata`` from
# their own modules.
from bios_ws.store import schema_runtime, schema_system  # noqa: E402,F401
