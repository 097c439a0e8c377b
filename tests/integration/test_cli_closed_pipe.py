"""`vbios ... | head`: a reader that goes away ends the command quietly, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bios_ws.cli import main

VBIOS = str(Path(sys.executable).parent / "vbios")


def test_a_closed_stdout_ends_quietly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert main(["init", "--home", str(home), "--no-tpm"]) == 0
    proc = subprocess.Popen([VBIOS, "measure", "--home", str(home)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first write
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in stderr
    assert "BrokenPipeError" not in stderr
