"""A PostgreSQL server of the test session's own, and a database per test.

The session runs Debian's PostgreSQL binaries (package ``postgresql``, which `make test`
installs): ``initdb`` into a temporary data directory, then ``postgres`` listening on a
unix socket only (``listen_addresses=''``: no port to race for), stopped by its pid at
the end. initdb and postgres refuse to run as root: as root, the server runs as the
``postgres`` user in a directory of its own under the system's temporary directory (the
pytest one is 0700 root's), removed at the end; as anyone else, as that user in the
session's temporary directory.

Each test gets a database of its own, copied from a template that already holds the
schema (``CREATE DATABASE ... TEMPLATE``), dropped at its end.

Authentication: the socket trusts the superuser ``vbios`` (the tests' own server), and
asks the role ``vbios_password`` for its password (``PASSWORD_ROLE``: the passfile test).
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from bios_ws.store import open_store

POSTGRES_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "vbios"
PASSWORD_ROLE = "vbios_password"
TEMPLATE = "vbios_template"
_HBA = (f"local all {PASSWORD_ROLE} scram-sha-256\n"
        "local all all trust\n")
_SETTINGS = {
    "listen_addresses": "",  # no TCP at all: the unix socket only
    "fsync": "off",  # a test server: its data needs to outlive no crash
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
}
_READY_SECONDS = 60.0


def postgres_bindir() -> Path:
    """The newest installed PostgreSQL's bin directory; the test fails (not skips)
    without one: the store contract runs on PostgreSQL too."""
    versions = sorted((p for p in POSTGRES_ROOT.glob("*/bin") if (p / "postgres").is_file()),
                      key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if not versions:
        pytest.fail(f"no PostgreSQL server under {POSTGRES_ROOT}: install Debian's postgresql"
                    " (make deps)")
    return versions[-1]


@dataclass(frozen=True)
class PostgresServer:
    """A running server: where its socket is, and its process."""

    socket_dir: Path
    process: subprocess.Popen[bytes]

    def url(self, database: str, user: str = SUPERUSER) -> str:
        """The store URL of ``database`` (psycopg 3, over the unix socket)."""
        return f"postgresql+psycopg://{user}@/{database}?host={self.socket_dir}"

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """A superuser connection in autocommit (CREATE and DROP DATABASE need it)."""
        return psycopg.connect(host=str(self.socket_dir), user=SUPERUSER, dbname=database,
                               autocommit=True)

    def create_database(self, template: str = TEMPLATE) -> str:
        name = f"t_{secrets.token_hex(6)}"
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')  # type: ignore[arg-type]
        return name

    def drop_database(self, name: str) -> None:
        if not re.fullmatch(r"t_[0-9a-f]{12}", name):
            raise ValueError(f"not a test database: {name!r}")
        with self.connect() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def _as_server_user() -> dict[str, object]:
    """Popen's arguments that run a command as the server's user (``postgres`` for root)."""
    if os.geteuid() != 0:
        return {}
    entry = pwd.getpwnam("postgres")
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": [],
            "env": {"PATH": "/usr/bin:/bin", "HOME": entry.pw_dir, "LC_ALL": "C.UTF-8"}}


@contextmanager
def running_postgres(private_dir: Callable[[], Path]) -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own, stopped (by pid) when the block ends. As root, it
    runs as ``postgres`` in a directory of its own under the system's temporary directory
    (removed afterwards); else in ``private_dir()``."""
    if os.geteuid() != 0:
        root = private_dir()
    else:
        root = Path(tempfile.mkdtemp(prefix="vbios-pg-"))
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    try:
        server = start_postgres(root)
        try:
            yield server
        finally:
            stop_postgres(server)
    finally:
        if os.geteuid() == 0:
            shutil.rmtree(root, ignore_errors=True)


def start_postgres(root: Path) -> PostgresServer:
    """initdb into ``root/data``, then postgres on the socket directory ``root/run``."""
    bindir = postgres_bindir()
    as_user = _as_server_user()
    data, run = root / "data", root / "run"
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth-local=trust",
         "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"],
        check=True, capture_output=True, **as_user)  # type: ignore[call-overload]
    (data / "pg_hba.conf").write_text(_HBA)
    run.mkdir(mode=0o700)
    if as_user:
        os.chown(run, int(str(as_user["user"])), int(str(as_user["group"])))
    settings = [arg for name, value in _SETTINGS.items() for arg in ("-c", f"{name}={value}")]
    log = (root / "postgres.log").open("wb")
    try:
        process = subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(data), "-k", str(run), *settings],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **as_user)
    finally:
        log.close()
    server = PostgresServer(run, process)
    try:
        _wait_ready(server, root / "postgres.log")
        with server.connect() as conn:
            conn.execute(f"CREATE ROLE {PASSWORD_ROLE} LOGIN")  # type: ignore[arg-type]
            conn.execute(f'CREATE DATABASE "{TEMPLATE}"')  # type: ignore[arg-type]
        open_store(server.url(TEMPLATE)).dispose()  # the template holds the schema
    except BaseException:
        stop_postgres(server)
        raise
    return server


def _wait_ready(server: PostgresServer, log: Path) -> None:
    """Until the server takes a connection; AssertionError with its log if it died."""
    import time

    deadline = time.monotonic() + _READY_SECONDS
    while True:
        if server.process.poll() is not None:
            raise AssertionError(f"postgres exited at start: {log.read_text()[-2000:]}")
        try:
            server.connect().close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise AssertionError(f"postgres not ready within {_READY_SECONDS:.0f} s")\
                    from None
            time.sleep(0.05)


def stop_postgres(server: PostgresServer) -> None:
    """Fast shutdown (SIGINT: clients disconnected, no waiting for them), by pid."""
    process = server.process
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """The session's PostgreSQL server, started at first use."""
    with running_postgres(lambda: tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a database of this test's own, with the schema in it."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def empty_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of an empty database of this test's own (no schema yet)."""
    name = postgres_server.create_database(template="template0")
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)
