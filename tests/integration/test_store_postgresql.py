"""What only PostgreSQL does: the audit table's append-only triggers refuse UPDATE, DELETE
and TRUNCATE inside the database, and the store authenticates without a password in its
URL (a libpq password file)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from bios_ws.domain.audit import AuditRecord, verify_chain
from bios_ws.errors import StoreUnavailable
from bios_ws.store import SqlStore, open_store
from tests.postgres_support import PASSWORD_ROLE, PostgresServer

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(postgres_url: str) -> Iterator[SqlStore]:
    s = open_store(postgres_url)
    with s.unit_of_work() as uow:
        for n in range(1, 4):
            uow.audit.append(AuditRecord(time=T0, principal="admin:root", operation="Op",
                                         domain_id="vm1", outcome="ok",
                                         changes_digest=f"{n:064x}"))
        uow.commit()
    yield s
    s.dispose()


def database_of(url: str) -> str:
    return url.split("@/", 1)[1].split("?", 1)[0]


@pytest.mark.parametrize("statement", [
    "UPDATE audit SET outcome = 'forged' WHERE seq = 2",
    "DELETE FROM audit WHERE seq = 3",
    "TRUNCATE audit CASCADE",
])
def test_audit_rows_cannot_be_changed_or_removed(
        store: SqlStore, postgres_server: PostgresServer, postgres_url: str,
        statement: str) -> None:
    with postgres_server.connect(database_of(postgres_url)) as raw, \
            pytest.raises(psycopg.errors.RaiseException, match="audit log is append-only"):
        raw.execute(statement)  # type: ignore[arg-type]
    with store.unit_of_work() as uow:
        entries = list(uow.audit.entries())
    assert len(entries) == 3 and verify_chain(entries) is None


def test_a_dropped_trigger_is_put_back_when_the_store_is_opened(
        store: SqlStore, postgres_server: PostgresServer, postgres_url: str) -> None:
    with postgres_server.connect(database_of(postgres_url)) as raw:
        raw.execute("DROP TRIGGER audit_no_change ON audit")
        raw.execute("UPDATE audit SET outcome = 'forged' WHERE seq = 2")
    with store.unit_of_work() as uow:
        broken = verify_chain(list(uow.audit.entries()))
    assert broken is not None and broken.seq == 2 and "altered" in broken.reason
    open_store(postgres_url).dispose()
    with postgres_server.connect(database_of(postgres_url)) as raw, \
            pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        raw.execute("DELETE FROM audit WHERE seq = 1")


@pytest.fixture
def password_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A database owned by the role that must give a password (scram-sha-256)."""
    name = postgres_server.create_database(template="template0")
    with postgres_server.connect() as conn:
        conn.execute(f"ALTER ROLE {PASSWORD_ROLE} PASSWORD 'pw-in-passfile-only'")  # type: ignore[arg-type]
        conn.execute(f'ALTER DATABASE "{name}" OWNER TO {PASSWORD_ROLE}')  # type: ignore[arg-type]
    with postgres_server.connect(name) as conn:
        conn.execute(f"ALTER SCHEMA public OWNER TO {PASSWORD_ROLE}")  # type: ignore[arg-type]
    try:
        yield name
    finally:
        postgres_server.drop_database(name)


def test_a_passfile_gives_the_password_the_url_never_carries(
        postgres_server: PostgresServer, password_database: str, tmp_path: Path) -> None:
    passfile = tmp_path / "pgpass"
    passfile.write_text(f"*:*:{password_database}:{PASSWORD_ROLE}:pw-in-passfile-only\n")
    passfile.chmod(0o600)
    url = (f"postgresql+psycopg://{PASSWORD_ROLE}@/{password_database}"
           f"?host={postgres_server.socket_dir}")
    with pytest.raises(StoreUnavailable, match="cannot open the state store") as refused:
        open_store(url)
    assert "pw-in-passfile-only" not in refused.value.message
    store = open_store(f"{url}&passfile={passfile}")
    try:
        assert store.schema_version() > 0
    finally:
        store.dispose()
