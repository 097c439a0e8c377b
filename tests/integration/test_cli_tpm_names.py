"""The `vbios tpm` group's names and answers: one documented name for reseal (the old
top-level `vbios reseal` works, hidden, and names the new one), and a --no-tpm home
answering the same one line to every TPM command; `vbios` in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bios_ws.cli import build_parser
from tests.cli_support import Run, refused


def help_of(*argv: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def command_list(help_text: str) -> list[str]:
    """The command names of a help's command list (lines indented by four spaces)."""
    return [line.split()[0] for line in help_text.splitlines()
            if line.startswith("    ") and not line.startswith("     ")]


def test_reseal_is_listed_under_tpm_only(capsys: pytest.CaptureFixture[str]) -> None:
    top = help_of(capsys=capsys)
    assert "tpm" in command_list(top) and "measure" in command_list(top)
    assert "reseal" not in command_list(top)
    assert "the home's TPM: the development swtpm's lifecycle, reseal" in top
    group = help_of("tpm", capsys=capsys)
    assert command_list(group) == ["start", "stop", "status", "reboot", "reseal"]


def test_the_old_reseal_name_works_and_names_the_new_one(home: Path, run: Run) -> None:
    code, out, err = run("reseal", "--home", str(home))
    assert code == 1
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "vbios: note: `vbios reseal` is now `vbios tpm reseal`"
    assert lines[1:] == [f"vbios: {home}: this home has no TPM (created with --no-tpm)"]


def test_a_home_without_tpm_answers_one_line_to_each_tpm_command(home: Path, run: Run) -> None:
    line = f"{home}: this home has no TPM (created with --no-tpm)"
    code, out, err = run("tpm", "status", "--home", str(home))
    assert (code, out, err) == (0, line + "\n", "")
    code, out, _ = run("tpm", "status", "--home", str(home), "--json")
    assert (code, json.loads(out)) == (0, {"running": False, "tpm": "none"})
    for command in ("start", "stop", "reboot", "reseal"):
        assert refused(run("tpm", command, "--home", str(home)), line) == f"vbios: {line}\n"
    assert not (home / "tpm").exists()  # no development TPM was made for it


def test_a_missing_home_names_home_and_vbios_home(tmp_path: Path, run: Run) -> None:
    missing = tmp_path / "nowhere"
    err = refused(run("tpm", "status", "--home", str(missing)), "no such state directory")
    assert "--home DIR" in err and "VBIOS_HOME=DIR" in err
    assert f"vbios init --home {missing}" in err
