"""The whole suite's safety net: no machine a test started outlives the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.qemu_support import kill_all


@pytest.fixture(scope="session", autouse=True)
def no_machine_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every keeper and QEMU started under the session's temporary directory is gone at
    the end (each fixture stops its own by pid; this kills and reports any it missed)."""
    yield
    left = kill_all(tmp_path_factory.getbasetemp())
    assert left == [], f"machines left running by a test, now killed: {left}"
