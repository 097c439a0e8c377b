"""The audit contract (visibility, numbering) on the SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bios_ws.store import SqlStore, open_store
from tests.audit_contract import AuditContract


class TestSqlAudit(AuditContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Iterator[SqlStore]:
        store = open_store(f"sqlite:///{tmp_path / 'vbios.db'}")
        yield store
        store.dispose()
