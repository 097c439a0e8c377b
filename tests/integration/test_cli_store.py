"""`vbios init --store`, `vbios store status|upgrade`: a home whose state lives in PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import create_engine, text

from bios_ws.home import Home
from bios_ws.store import SCHEMA_VERSION
from tests.cli_support import Run, refused


def set_schema_version(url: str, version: int) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE meta SET value = :v WHERE key = 'schema_version'"),
                         {"v": str(version)})
    finally:
        engine.dispose()


def test_init_with_a_postgresql_store_keeps_every_command_on_it(
        run: Run, tmp_path: Path, empty_postgres_url: str) -> None:
    home = tmp_path / "home"
    code, out, err = run("init", "--home", str(home), "--store", empty_postgres_url)
    assert code == 0, err
    assert "postgresql+psycopg://vbios@/" in out
    assert Home.open(home).db_url == empty_postgres_url
    assert run("domain", "create", "vm1", "--home", str(home))[0] == 0
    assert not (home / "vbios.db").exists()  # nothing went to the SQLite file
    code, out, _ = run("store", "status", "--home", str(home), "--json")
    status = json.loads(out)
    assert code == 0 and status["schema_version"] == SCHEMA_VERSION
    assert status["pending"] == [] and not status["too_new"]
    code, out, _ = run("audit", "verify", "--home", str(home))
    assert code == 0 and "intact" in out


def test_a_store_url_with_a_password_is_refused_and_not_recorded(
        run: Run, tmp_path: Path) -> None:
    home = tmp_path / "home"
    err = refused(run("init", "--home", str(home), "--store",
                      "postgresql+psycopg://vbios:s3cret@db.example/vbios"), "passfile")
    assert "s3cret" not in err
    assert not home.exists() or Home.open(home).recorded_store is None


def test_an_older_postgresql_store_asks_for_store_upgrade(
        run: Run, tmp_path: Path, empty_postgres_url: str) -> None:
    home = tmp_path / "home"
    assert run("init", "--home", str(home), "--store", empty_postgres_url)[0] == 0
    set_schema_version(empty_postgres_url, SCHEMA_VERSION - 1)
    refused(run("domain", "list", "--home", str(home)), "run vbios store upgrade")
    code, out, _ = run("store", "status", "--home", str(home))
    assert code == 0 and f"pending {SCHEMA_VERSION}:" in out
    code, out, _ = run("store", "upgrade", "--home", str(home))
    assert code == 0 and f"schema version {SCHEMA_VERSION - 1} -> {SCHEMA_VERSION}" in out
    assert run("domain", "list", "--home", str(home))[0] == 0


def test_serve_refuses_a_store_newer_than_it_knows(
        run: Run, tmp_path: Path, empty_postgres_url: str) -> None:
    home = tmp_path / "home"
    assert run("init", "--home", str(home), "--store", empty_postgres_url)[0] == 0
    set_schema_version(empty_postgres_url, SCHEMA_VERSION + 1)
    refused(run("serve", "--home", str(home), "--no-tpm", "--bind", "127.0.0.1:0"),
            "newer than this vbios understands")
    refused(run("store", "upgrade", "--home", str(home)), "upgrade vbios")
    code, out, _ = run("store", "status", "--home", str(home))
    assert code == 0 and "upgrade vbios" in out
