"""Guard: no test can write the user's real `vbios-client attest` state file.

The session fixture in tests/conftest.py points XDG_STATE_HOME at a temporary directory
(and fails the session if the real file changed anyway); this checks that it does, for
this process and for the `vbios-client` processes tests start.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vbios_client.attest_cli import default_state_file
from vbios_client.attestation import ClockState, ClockStore

from tests.conftest import REAL_ATTEST_STATE, file_fingerprint


def test_the_default_state_file_is_the_sessions_own(private_attest_state: Path) -> None:
    default = default_state_file()
    assert default != REAL_ATTEST_STATE
    assert default.is_relative_to(private_attest_state)
    assert not REAL_ATTEST_STATE.is_relative_to(private_attest_state)


def test_a_client_process_started_by_a_test_uses_it_too(private_attest_state: Path) -> None:
    shown = subprocess.run(
        [sys.executable, "-c",
         "from vbios_client.attest_cli import default_state_file; print(default_state_file())"],
        capture_output=True, text=True, timeout=60, check=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert Path(shown.stdout.strip()).is_relative_to(private_attest_state)


def test_the_end_of_session_check_sees_a_write(tmp_path: Path) -> None:
    path = tmp_path / "attest-clock.json"
    assert file_fingerprint(path) is None
    ClockStore(path).save("https://h/", b"ak", ClockState(1, 0, 0))
    written = file_fingerprint(path)
    assert written is not None
    with ClockStore(path).locked():  # taking the lock alone (creating its file) shows too
        pass
    assert file_fingerprint(path) != written
