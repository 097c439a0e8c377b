"""`vbios ak` (the host's attestation key), its old name `vbios attest`, and a home
without TPM, in-process on tmp_path homes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bios_ws.cli import main
from tests.cli_support import Run, refused


@pytest.mark.parametrize("command", ["show", "enroll"])
def test_a_home_without_tpm_says_so_in_one_sentence(home: Path, run: Run, command: str) -> None:
    err = refused(run("ak", command, "--home", str(home)), "")
    assert err == f"vbios: {home}: this home has no TPM (created with --no-tpm)\n"


def test_a_home_without_tpm_says_so_in_json_too(home: Path, run: Run) -> None:
    code, out, err = run("ak", "show", "--json", "--home", str(home))
    assert code == 1
    assert json.loads(out) == {"error": {
        "code": "AdminError",
        "message": f"{home}: this home has no TPM (created with --no-tpm)"}}
    assert err == f"vbios: {home}: this home has no TPM (created with --no-tpm)\n"


def test_the_old_name_still_works_and_names_the_new_one(home: Path, run: Run) -> None:
    code, out, err = run("attest", "show", "--home", str(home))
    assert (code, out) == (1, "")
    assert err.splitlines() == ["vbios: note: `vbios attest` is now `vbios ak`",
                                f"vbios: {home}: this home has no TPM (created with --no-tpm)"]


def test_the_new_name_prints_no_note(home: Path, run: Run) -> None:
    assert "note" not in run("ak", "show", "--home", str(home))[2]


def test_the_help_lists_ak_and_not_attest(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    listed = capsys.readouterr().out
    assert "    ak " in listed and "the host's attestation key in the TPM" in listed
    assert "attest" not in listed.replace("attestation", "")


def test_the_old_name_has_its_own_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["attest", "show", "--bogus"])
    assert done.value.code == 2
    assert "usage: vbios attest show" in capsys.readouterr().err
