"""What the tests of the `vbios` command share: running it in-process, reading refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bios_ws.cli import main

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    """`vbios ARGV` in-process; `init` without a TPM choice gets --no-tpm here (fast homes:
    the TPM default is tested by test_init_seals_in_the_development_tpm_by_default)."""

    def invoke(*argv: str) -> tuple[int, str, str]:
        args = list(argv)
        if args[:1] == ["init"] and not {"--tpm", "--no-tpm"} & set(args):
            args.append("--no-tpm")
        code = main(args)
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, _without_no_tpm_warning(err)

    return invoke


def _without_no_tpm_warning(err: str) -> str:
    lines = err.splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("WARNING: "))


@pytest.fixture
def home(tmp_path: Path, run: Run) -> Path:
    path = tmp_path / "home"
    code, _, err = run("init", "--home", str(path))
    assert code == 0, err
    return path


def refused(result: tuple[int, str, str], fragment: str) -> str:
    code, _, err = result
    assert code == 1
    assert err.startswith("vbios: ")
    assert err.count("\n") == 1, err
    assert fragment in err
    return err
