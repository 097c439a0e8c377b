"""The audit contract (visibility, numbering, refusal windows) on the in-memory fake."""

from __future__ import annotations

import pytest

from bios_ws.domain.fakes import MemoryStore
from tests.audit_contract import AuditContract


class TestMemoryAudit(AuditContract):
    @pytest.fixture
    def store(self) -> MemoryStore:
        return MemoryStore()
