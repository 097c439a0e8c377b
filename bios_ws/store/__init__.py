"""The SQLAlchemy state store: the adapter behind the domain's repository, audit and UoW ports."""

from bios_ws.store.schema import SCHEMA_VERSION
from bios_ws.store.sql import SqlStore, SqlUnitOfWork, open_store

__all__ = ["SCHEMA_VERSION", "SqlStore", "SqlUnitOfWork", "open_store"]
