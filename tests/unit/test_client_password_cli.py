"""`vbios-client password change`: the current setup password is --password-file (or
VBIOS_SETUP_PASSWORD) as for every command; another password's current value is
--old-password-file; the new one --new-password-file; the former names still work."""

from __future__ import annotations

import getpass
import io
from pathlib import Path

import pytest
from vbios_client import _cli_parser, cli


class FakeClient:
    """Stands in for BiosClient: records change_password's arguments."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def change_password(self, *args: object) -> int:
        self.calls.append(args)
        return 5


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(monkeypatch: pytest.MonkeyPatch, *argv: str, env_password: str | None = None,
        stdin: io.StringIO | None = None) -> tuple[FakeClient, int, str, str]:
    fake = FakeClient()
    monkeypatch.setattr(cli, "_connect", lambda args: fake)
    monkeypatch.delenv("VBIOS_BUNDLE", raising=False)
    if env_password is None:
        monkeypatch.delenv("VBIOS_SETUP_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("VBIOS_SETUP_PASSWORD", env_password)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["password", "change", *argv], stdout=out, stderr=err,
                    stdin=stdin or io.StringIO())
    return fake, code, out.getvalue(), err.getvalue()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    paths = {}
    for name, text in (("setup", "setup-pw-1"), ("new", "setup-pw-2"), ("power", "power-pw")):
        path = tmp_path / name
        path.write_text(text + "\n")
        path.chmod(0o600)
        paths[name] = str(path)
    return paths


def test_the_current_setup_password_is_the_global_password_file(
        monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> None:
    fake, code, out, err = run(monkeypatch, "SetupPassword", "--password-file", files["setup"],
                               "--new-password-file", files["new"], "--if-match", "4")
    assert (code, out, err) == (0, "version 5\n", "")
    assert fake.calls == [("SetupPassword", "setup-pw-1", "setup-pw-2", 4, "setup-pw-1")]


def test_or_vbios_setup_password(monkeypatch: pytest.MonkeyPatch,
                                 files: dict[str, str]) -> None:
    fake, code, _, _ = run(monkeypatch, "SetupPassword", "--clear", env_password="from-env")
    assert code == 0
    assert fake.calls == [("SetupPassword", "from-env", "", None, "from-env")]


def test_no_current_password_when_none_is_set(monkeypatch: pytest.MonkeyPatch,
                                              files: dict[str, str]) -> None:
    fake, code, _, _ = run(monkeypatch, "SetupPassword", "--new-password-file", files["new"])
    assert code == 0 and fake.calls == [("SetupPassword", None, "setup-pw-2", None, None)]


def test_another_password_s_current_value_is_old_password_file(
        monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> None:
    fake, code, _, _ = run(monkeypatch, "PowerOnPassword", "--old-password-file",
                           files["power"], "--new-password-file", files["new"],
                           "--password-file", files["setup"])
    assert code == 0
    assert fake.calls == [("PowerOnPassword", "power-pw", "setup-pw-2", None, "setup-pw-1")]


def test_old_password_file_for_the_setup_password_is_refused(
        monkeypatch: pytest.MonkeyPatch, files: dict[str, str]) -> None:
    fake, code, out, err = run(monkeypatch, "SetupPassword", "--old-password-file",
                               files["setup"], "--new-password-file", files["new"])
    assert (code, out, fake.calls) == (2, "", [])
    assert err == ("vbios-client: error: the current setup password goes in --password-file"
                   " (or VBIOS_SETUP_PASSWORD), as for every command\n")


@pytest.mark.parametrize(("name", "instead", "old"), [
    ("SetupPassword", "--password-file", "setup-pw-1"),
    ("PowerOnPassword", "--old-password-file", "setup-pw-1"),
])
def test_the_former_names_still_work_with_a_note(
        monkeypatch: pytest.MonkeyPatch, files: dict[str, str], name: str, instead: str,
        old: str) -> None:
    fake, code, _, err = run(monkeypatch, name, "--old-file", files["setup"], "--new-file",
                             files["new"])
    assert code == 0 and fake.calls == [(name, old, "setup-pw-2", None, None)]
    assert err.splitlines() == [
        f"vbios-client: note: --old-file is a former name: give {instead} FILE",
        "vbios-client: note: --new-file is a former name: give --new-password-file FILE"]


def test_the_former_names_are_hidden() -> None:
    parser = dict(_cli_parser.walk(cli.build_parser()))[("password", "change")]
    text = parser.format_help()
    assert "--old-file" not in text and "--new-file" not in text
    assert "--new-password-file" in text and "--old-password-file" in text


@pytest.mark.parametrize(("argv", "message"), [
    (["SetupPassword"], "no terminal to ask on: give --new-password-file FILE (or --clear)"),
    (["SetupPassword", "--clear", "--new-password-file", "{new}"],
     "--clear removes the password: give no new password file with it"),
    (["SetupPassword", "--new-password-file", "{empty}"],
     "the new password is empty: use --clear to remove the password"),
])
def test_refusals(monkeypatch: pytest.MonkeyPatch, files: dict[str, str], tmp_path: Path,
                  argv: list[str], message: str) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n")
    words = [w.format(new=files["new"], empty=empty) for w in argv]
    fake, code, out, err = run(monkeypatch, *words)
    assert (code, out, fake.calls) == (2, "", [])
    assert err == f"vbios-client: error: {message}\n"


def test_on_a_terminal_the_current_and_new_ones_are_asked_for(
        monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["current", "brand-new-pw", "brand-new-pw"])
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(getpass, "getpass", ask)
    fake, code, _, _ = run(monkeypatch, "SetupPassword", stdin=Tty())
    assert code == 0
    assert prompts == ["Current setup password (empty if none): ", "New SetupPassword: ",
                       "Again: "]
    assert fake.calls == [("SetupPassword", "current", "brand-new-pw", None, None)]
