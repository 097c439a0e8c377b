"""Statements of the hot paths, built once and run on SQLite without SQLAlchemy's execute.

On SQLite, ``Connection.execute`` of a Core statement costs several times the
statement itself (cache-key generation, compiled-cache lookup, result set-up),
and building the statement (``insert(...).values(...)``) costs more again. A
``Prepared`` statement is a Core statement (with ``bindparam``s) compiled once
to SQLite text; on SQLite it runs on the driver's cursor, elsewhere through
``Connection.execute`` as before: the same statement either way.

Only statements whose parameters need no conversion (strings and integers) are
accepted: the text is run with the values as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import sqlite
from sqlalchemy.sql import Executable

from bios_ws.store.engine import driver_connection

_SQLITE = sqlite.dialect()


class Prepared:
    """A Core statement and its SQLite text with the order of its parameters."""

    __slots__ = ("_defaults", "_names", "sql", "statement")

    def __init__(self, statement: Executable) -> None:
        compiled = statement.compile(dialect=_SQLITE)  # type: ignore[attr-defined]
        for bind in compiled.binds.values():
            if bind.type._cached_bind_processor(_SQLITE) is not None:
                raise TypeError(f"parameter {bind.key} needs conversion; not preparable")
        self.statement = statement
        self.sql: str = str(compiled)
        self._names: tuple[str, ...] = tuple(compiled.positiontup or ())
        #: values the statement carries itself (a LIMIT, a literal in a where clause)
        self._defaults: dict[str, Any] = dict(compiled.params)

    def _values(self, params: Mapping[str, Any]) -> tuple[Any, ...]:
        defaults = self._defaults
        return tuple(params[n] if n in params else defaults[n] for n in self._names)

    def rows(self, conn: Connection, sqlite_driver: bool,
             params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """The rows a query gives, as tuples."""
        if not sqlite_driver:
            return [tuple(row) for row in conn.execute(self.statement, dict(params))]
        cursor = driver_connection(conn).cursor()
        try:
            return list(cursor.execute(self.sql, self._values(params)).fetchall())
        finally:
            cursor.close()

    def run(self, conn: Connection, sqlite_driver: bool, params: Mapping[str, Any]) -> int:
        """Run a statement that returns no rows; how many rows it changed."""
        if not sqlite_driver:
            return int(conn.execute(self.statement, dict(params)).rowcount)
        cursor = driver_connection(conn).cursor()
        try:
            return int(cursor.execute(self.sql, self._values(params)).rowcount)
        finally:
            cursor.close()

    def insert(self, conn: Connection, sqlite_driver: bool, params: Mapping[str, Any]) -> int:
        """Run an INSERT of one row; the primary key the database gave it."""
        if not sqlite_driver:
            key = conn.execute(self.statement, dict(params)).inserted_primary_key
            assert key is not None
            return int(key[0])
        cursor = driver_connection(conn).cursor()
        try:
            row_id = cursor.execute(self.sql, self._values(params)).lastrowid
        finally:
            cursor.close()
        assert row_id is not None
        return int(row_id)
