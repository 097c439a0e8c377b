"""Guard: no test can write the user's real `vbios-client attest` state file.

The session fixture in tests/conftest.py points XDG_STATE_HOME at a temporary directory;
this checks that the default state file resolves there, for this process and for the
`vbios-client` processes tests start (which write it unless given --state or --no-state).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from vbios_client.attest_cli import default_state_file

from tests.conftest import REAL_ATTEST_STATE


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

