"""`make help` lists every target of the Makefile's .PHONY and every variable with its
default (run with make itself: it is cheap and installs nothing)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The variables a user may set on the command line, each listed with its default.
VARIABLES = ("BIND", "VBIOS_HOME", "DEMO_DOMAIN", "PYTHON", "VENV", "PEER_VENV", "URL", "BUNDLE")


def phony_targets() -> list[str]:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    found = re.findall(r"^\.PHONY:(.*)$", text, re.MULTILINE)
    return [name for line in found for name in line.split()]


def make_help(*assignments: str) -> str:
    make = shutil.which("make")
    assert make is not None, "make is needed: `make run` and `make test` need it too"
    done = subprocess.run([make, "--no-print-directory", "-C", str(ROOT), "help",
                           *assignments], capture_output=True, text=True, timeout=30,
                          check=False, stdin=subprocess.DEVNULL,
                          env={k: v for k, v in os.environ.items() if k not in VARIABLES})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_phony_target_has_one_line_in_make_help() -> None:
    targets = phony_targets()
    assert {"run", "test", "help", "clean", "install", "deps", "bench"} <= set(targets)
    out = make_help()
    for target in targets:
        lines = [line for line in out.splitlines() if line.split()[:1] == [target]]
        assert len(lines) == 1, f"make help has no single line for {target!r}:\n{out}"
        assert len(lines[0].split()) > 2, f"{target!r} is listed without a description"


def test_make_help_shows_each_variable_with_its_value() -> None:
    default = make_help()
    for name in VARIABLES:
        assert re.search(rf"^  {name} +\S", default, re.MULTILINE), f"{name} missing:\n{default}"
    assert re.search(r"^  BIND +127\.0\.0\.1:8443$", default, re.MULTILINE), default
    assert re.search(rf"^  VBIOS_HOME +{re.escape(str(ROOT))}/\.vbios$", default, re.MULTILINE)
    assert re.search(r"^  DEMO_DOMAIN +demo$", default, re.MULTILINE), default
    assert re.search(r"^  URL +\(none\)$", default, re.MULTILINE), default
    moved = make_help("BIND=127.0.0.1:9443", "DEMO_DOMAIN=vm1")
    assert re.search(r"^  BIND +127\.0\.0\.1:9443$", moved, re.MULTILINE), moved
    assert "serve the vBIOS on https://127.0.0.1:9443/" in moved
    assert re.search(r"^  DEMO_DOMAIN +vm1$", moved, re.MULTILINE), moved
