"""The whole suite's safety nets: no machine a test started outlives the session, and no
test writes the user's own guest state (``vbios-client attest`` keeps its clock state
under ``$XDG_STATE_HOME``: the session points it at a temporary directory)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from vbios_client.attest_cli import default_state_file

from tests.qemu_support import kill_all

#: The file `vbios-client attest` would write by default outside the tests.
REAL_ATTEST_STATE = default_state_file()


@pytest.fixture(scope="session", autouse=True)
def private_attest_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """XDG_STATE_HOME is a directory of the session's own; the processes tests start
    inherit it (tests/unit/test_attest_state_isolation.py checks both)."""
    state_home = tmp_path_factory.mktemp("xdg-state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_STATE_HOME", str(state_home))
        yield state_home


@pytest.fixture(scope="session", autouse=True)
def no_machine_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Every keeper and QEMU started under the session's temporary directory is gone at
    the end (each fixture stops its own by pid; this kills and reports any it missed)."""
    yield
    left = kill_all(tmp_path_factory.getbasetemp())
    assert left == [], f"machines left running by a test, now killed: {left}"


@pytest.fixture
def retries() -> Iterator[list[int]]:
    """The runs of units of work retried in this process while the test runs (their
    numbers: 2 for a first retry; ``ports.retrying``)."""
    from bios_ws.domain.ports import add_retry_listener, remove_retry_listener

    seen: list[int] = []
    add_retry_listener(seen.append)
    yield seen
    remove_retry_listener(seen.append)
