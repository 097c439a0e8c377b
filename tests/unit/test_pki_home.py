"""The state directory: creation, refusals, layout, home resolution."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from bios_ws.errors import StateDirectoryError
from bios_ws.home import MARKER_NAME, Home, resolve_home_path


def test_create_makes_a_private_directory_with_its_marker(tmp_path: Path) -> None:
    home = Home.create(tmp_path / "deep" / "home")
    assert stat.S_IMODE(home.path.stat().st_mode) == 0o700
    assert json.loads((home.path / MARKER_NAME).read_text()) == {"format": 1}
    assert Home.open(tmp_path / "deep" / "home") == home
    assert not home.is_initialized


def test_create_accepts_an_empty_directory_and_tightens_it(tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir(mode=0o755)
    home = Home.create(target)
    assert stat.S_IMODE(home.path.stat().st_mode) == 0o700


def test_create_returns_an_existing_home(tmp_path: Path) -> None:
    first = Home.create(tmp_path / "home")
    (first.path / "something").write_text("kept")
    assert Home.create(tmp_path / "home") == first
    assert (first.path / "something").read_text() == "kept"


def test_create_refuses_a_foreign_directory(tmp_path: Path) -> None:
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(StateDirectoryError, match="is not a vbios state directory") as info:
        Home.create(foreign)
    assert "\n" not in info.value.message
    assert [p.name for p in foreign.iterdir()] == ["cat.jpg"]


def test_create_refuses_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(StateDirectoryError, match="not a directory"):
        Home.create(target)


def test_open_refuses_a_missing_directory_and_says_what_to_do(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(StateDirectoryError) as info:
        Home.open(missing)
    assert info.value.message == (
        f"{missing}: no such state directory; run vbios init --home {missing} to make it,"
        " or name the home you have with --home DIR or VBIOS_HOME=DIR")


def test_open_refuses_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "x").write_text("x")
    with pytest.raises(StateDirectoryError, match=f"{tmp_path} is not a vbios state directory"):
        Home.open(tmp_path)


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "unreadable or damaged"),
    ('{"format": 2}', "unsupported state directory format"),
    ("[1]", "unsupported state directory format"),
])
def test_open_refuses_a_bad_marker(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / MARKER_NAME).write_text(content)
    with pytest.raises(StateDirectoryError, match=message):
        Home.open(tmp_path)


def test_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    home = Home.create(Path("rel"))
    root = tmp_path / "rel"
    assert home.path == root
    assert home.db_url == f"sqlite:///{root}/vbios.db"
    assert home.registry_path == root / "registry.json"
    assert home.ca_cert == root / "pki" / "ca.pem"
    assert home.ca_key == root / "pki" / "ca-key.pem"
    assert home.server_cert == root / "pki" / "server.pem"
    assert home.server_key == root / "pki" / "server-key.pem"
    assert home.passphrase_file == root / "secrets" / "key-passphrase"
    assert home.admin_dir == root / "admin"
    assert home.bundles_dir == root / "bundles"


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    env = {"VBIOS_HOME": "/srv/vbios"}
    assert resolve_home_path("/explicit", env) == Path("/explicit")
    assert resolve_home_path(None, env) == Path("/srv/vbios")
    assert resolve_home_path(None, {}) == tmp_path / ".local" / "share" / "vbios"
    assert resolve_home_path(None, {"VBIOS_HOME": ""}) == Home.default_path()
    monkeypatch.setenv("VBIOS_HOME", str(tmp_path / "from-env"))
    assert resolve_home_path(None) == tmp_path / "from-env"
