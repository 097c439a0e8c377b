"""Which store URLs vbios takes: a SQLite file, or PostgreSQL through psycopg 3.

A URL never carries a password: it is recorded in the home (``vbios-home.json``,
world-readable) and shown in logs. PostgreSQL authenticates otherwise: peer
authentication over the unix socket (``postgresql+psycopg://vbios@/vbios?host=
/run/postgresql``), or a libpq password file (``~/.pgpass``, ``PGPASSFILE``, or the
``passfile`` query parameter). docs/store.md says how.
"""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from bios_ws.errors import StoreUnavailable

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
#: The one PostgreSQL driver: psycopg 3, written explicitly in the URL.
POSTGRESQL_DRIVER = "psycopg"
_SECRET_PARAMETERS = ("password", "sslpassword")
_HOW_TO_AUTHENTICATE = ("keep the password out of the URL: use peer authentication over the unix"
                " socket, or a libpq password file (~/.pgpass, PGPASSFILE or ?passfile=PATH);"
                " see docs/store.md")


def check_store_url(url: str) -> URL:
    """``url`` parsed, or StoreUnavailable saying why vbios does not take it."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreUnavailable("invalid state store URL: expected sqlite:////abs/path/vbios.db"
                               " or postgresql+psycopg://USER@HOST/DATABASE") from None
    backend, _, driver = parsed.drivername.partition("+")  # no dialect loaded for this
    if backend == SQLITE:
        if driver not in ("", "pysqlite"):
            raise StoreUnavailable(f"unsupported SQLite driver {driver!r}: write sqlite:///PATH")
        return parsed
    if backend != POSTGRESQL:
        raise StoreUnavailable(f"unsupported state store {backend!r}: vbios keeps its state in"
                               " SQLite or PostgreSQL (postgresql+psycopg://)")
    if driver != POSTGRESQL_DRIVER:
        raise StoreUnavailable("write the PostgreSQL driver explicitly: postgresql+psycopg://"
                               " (psycopg 3 is the one vbios uses)")
    if parsed.password is not None or any(name in parsed.query for name in _SECRET_PARAMETERS):
        raise StoreUnavailable(f"the state store URL carries a password: {_HOW_TO_AUTHENTICATE}")
    if not parsed.database:
        raise StoreUnavailable("the PostgreSQL store URL names no database:"
                               " postgresql+psycopg://USER@HOST/DATABASE")
    return parsed


def is_postgresql(url: URL) -> bool:
    return url.get_backend_name() == POSTGRESQL
