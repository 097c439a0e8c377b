"""`vbios ... --json` on a tmp_path home: refusals as JSON on stdout, one time format."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli_support import Run, refused

RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z")


@pytest.mark.parametrize(("argv", "code"), [
    (("domain", "show", "nope"), "DomainNotFound"),
    (("domain", "power", "get", "nope"), "DomainNotFound"),
    (("domain", "show", "Not A Name"), "InvalidRequest"),
])
def test_a_refusal_with_json_is_json_on_stdout_with_the_same_exit(
        home: Path, run: Run, argv: tuple[str, ...], code: str) -> None:
    plain = run(*argv, "--home", str(home))
    message = refused(plain, "")[len("vbios: "):-1]
    assert plain[1] == ""
    status, out, err = run(*argv, "--json", "--home", str(home))
    assert status == plain[0] == 1
    assert json.loads(out) == {"error": {"code": code, "message": message}}
    assert out.startswith('{\n  "error"')
    assert err == plain[2]


def test_a_missing_home_with_json(tmp_path: Path, run: Run) -> None:
    status, out, _ = run("domain", "list", "--json", "--home", str(tmp_path / "none"))
    assert status == 1
    error = json.loads(out)["error"]
    assert error["code"] == "StateDirectoryError"
    assert "no such state directory" in error["message"]


def _times(data: object) -> list[str]:
    """Every value of a key that names a time, anywhere in ``data``."""
    if isinstance(data, list):
        return [t for item in data for t in _times(item)]
    if isinstance(data, dict):
        found = [str(v) for k, v in data.items()
                 if v is not None and re.search(r"(_at|time|not_after)$", k)]
        return found + [t for v in data.values() for t in _times(v)]
    return []


def test_every_time_in_json_is_rfc3339_utc(home: Path, run: Run) -> None:
    assert run("domain", "create", "web1", "--home", str(home))[0] == 0
    seen: list[str] = []
    for argv in (("domain", "list"), ("domain", "show", "web1"),
                 ("domain", "power", "get", "web1"), ("cert", "list"), ("audit", "show")):
        code, out, err = run(*argv, "--json", "--home", str(home))
        assert code == 0, err
        assert out.startswith(("[\n  {", "{\n  \"")), out  # indented by two
        seen += _times(json.loads(out))
    assert len(seen) >= 6
    assert all(RFC3339.fullmatch(moment) for moment in seen), seen


def test_every_time_in_text_is_rfc3339_utc(home: Path, run: Run) -> None:
    assert run("domain", "create", "web1", "--home", str(home))[0] == 0
    for argv in (("domain", "list"), ("domain", "show", "web1"), ("cert", "list"),
                 ("audit", "show")):
        code, out, _ = run(*argv, "--home", str(home))
        assert code == 0
        assert not re.search(r"\+00:00|\d\d:\d\d:\d\d\.\d", out), out
        assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", out), out
