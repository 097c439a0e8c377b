"""Which state store URLs vbios takes (``bios_ws.store.urls``), and why it refuses the rest."""

from __future__ import annotations

import re

import pytest

from bios_ws.errors import StoreUnavailable
from bios_ws.store.urls import check_store_url


@pytest.mark.parametrize("url", [
    "sqlite:////var/lib/vbios/vbios.db",
    "sqlite+pysqlite:////var/lib/vbios/vbios.db",
    "postgresql+psycopg://vbios@db.example/vbios",
    "postgresql+psycopg://vbios@/vbios?host=/run/postgresql",
    "postgresql+psycopg://vbios@db.example:5433/vbios?passfile=/etc/vbios/pgpass&sslmode=verify-full",
])
def test_sqlite_and_postgresql_through_psycopg_are_taken(url: str) -> None:
    assert check_store_url(url).database


@pytest.mark.parametrize(("url", "reason"), [
    ("postgresql+psycopg://vbios:s3cret@db.example/vbios", "carries a password"),
    ("postgresql+psycopg://vbios@db.example/vbios?password=s3cret", "carries a password"),
    ("postgresql+psycopg://vbios@db.example/vbios?sslpassword=s3cret", "carries a password"),
    ("postgresql://vbios@db.example/vbios", "postgresql+psycopg://"),
    ("postgresql+psycopg2://vbios@db.example/vbios", "postgresql+psycopg://"),
    ("postgresql+asyncpg://vbios@db.example/vbios", "postgresql+psycopg://"),
    ("postgresql+psycopg://vbios@db.example", "names no database"),
    ("mysql+pymysql://vbios@db.example/vbios", "unsupported state store 'mysql'"),
    ("sqlite+aiosqlite:////tmp/vbios.db", "unsupported SQLite driver"),
    ("not a url", "invalid state store URL"),
])
def test_other_urls_are_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(StoreUnavailable, match=re.escape(reason)) as refused:
        check_store_url(url)
    assert "s3cret" not in refused.value.message


def test_the_password_refusal_says_how_to_authenticate_instead() -> None:
    with pytest.raises(StoreUnavailable) as refused:
        check_store_url("postgresql+psycopg://vbios:s3cret@db.example/vbios")
    assert "PGPASSFILE" in refused.value.message and "peer" in refused.value.message
