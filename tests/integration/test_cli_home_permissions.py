"""`vbios serve`, `vbios devrun` and `vbios domain create` refuse a home whose keys other
users could read or replace, saying which chmod fixes it; run on tmp_path homes."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bios_ws.errors import UnsafePermissions
from bios_ws.home import Home
from bios_ws.launch.permissions import check_home_permissions
from bios_ws.server.tls import ServerTls
from tests.cli_support import Run, refused

#: Makes the home unsafe; returns the path the refusal must name.
Spoil = Callable[[Path], Path]


def _chmod(relative: str, mode: int) -> Spoil:
    def spoil(home: Path) -> Path:
        path = home / relative if relative else home
        path.chmod(mode)
        return path

    return spoil


def _with_bundle(run: Run, home: Path) -> None:
    assert run("domain", "create", "web0", "--home", str(home))[0] == 0


def _fix_command(err: str) -> str:
    """The copy-pastable command the refusal ends with."""
    return err.rstrip("\n").rsplit("; fix: ", 1)[1]


def _apply(command: str) -> None:
    subprocess.run(["sh", "-c", command], check=True)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _nothing_created(run: Run, home: Path, name: str = "web1") -> None:
    assert not (home / "bundles" / name).exists()
    assert name not in run("domain", "list", "--home", str(home))[1]


UNSAFE = {
    "home g+w": (_chmod("", 0o770), "(directory, mode 0770) is writable by its group",
                 "chmod go-w {path}"),
    "home o+w": (_chmod("", 0o702), "(directory, mode 0702) is writable by others",
                 "chmod go-w {path}"),
    "pki o+w": (_chmod("pki", 0o757), "(directory, mode 0757) is writable by others",
                "chmod go-w {path}"),
    "CA key g+r": (_chmod("pki/ca-key.pem", 0o640),
                   "(private key material, mode 0640) is accessible to its group",
                   "chmod 600 {path}"),
    "server key o+r": (_chmod("pki/server-key.pem", 0o604),
                       "(private key material, mode 0604) is accessible to others",
                       "chmod 600 {path}"),
    "transfer key g+rw": (_chmod("pki/transfer-key.pem", 0o660),
                          "(private key material, mode 0660) is accessible to its group",
                          "chmod 600 {path}"),
    "passphrase o+r": (_chmod("secrets/key-passphrase", 0o644),
                       "(private key material, mode 0644) is accessible to its group and"
                       " others", "chmod 600 {path}"),
    "admin key g+r": (_chmod("admin/key.pem", 0o640),
                      "(private key material, mode 0640) is accessible to its group",
                      "chmod 600 {path}"),
    "bundle key o+r": (_chmod("bundles/web0/key.pem", 0o644),
                       "(private key material, mode 0644) is accessible to its group and"
                       " others", "chmod 600 {path}"),
    "bundle dir g+w": (_chmod("bundles/web0", 0o770),
                       "(directory, mode 0770) is writable by its group", "chmod go-w {path}"),
}


@pytest.mark.parametrize("case", list(UNSAFE))
def test_domain_create_refuses_until_the_suggested_chmod_is_run(
    case: str, home: Path, run: Run
) -> None:
    spoil, problem, command = UNSAFE[case]
    _with_bundle(run, home)
    path = spoil(home)
    err = refused(run("domain", "create", "web1", "--home", str(home)), f"{path} {problem}")
    assert err.startswith(f"vbios: refusing {home}: other users could read or replace")
    assert _fix_command(err) == command.format(path=path)
    _nothing_created(run, home)
    _apply(_fix_command(err))
    code, out, err = run("domain", "create", "web1", "--home", str(home))
    assert (code, err) == (0, "")
    assert "created domain web1" in out


def test_every_finding_is_named_and_fixed_by_one_command(home: Path, run: Run) -> None:
    _with_bundle(run, home)
    home.chmod(0o777)
    (home / "pki" / "ca-key.pem").chmod(0o644)
    (home / "bundles" / "web0" / "key.pem").chmod(0o640)
    err = refused(run("domain", "create", "web1", "--home", str(home)), "refusing")
    assert _fix_command(err) == (f"chmod go-w {home} && chmod 600 {home}/pki/ca-key.pem"
                                 f" {home}/bundles/web0/key.pem")
    _apply(_fix_command(err))
    assert _mode(home) == 0o755
    assert run("domain", "create", "web1", "--home", str(home))[0] == 0


def _link_admin_key(home: Path, elsewhere: Path) -> tuple[Path, Path]:
    link = home / "admin" / "key.pem"
    elsewhere.mkdir(mode=0o700)
    target = elsewhere / "key.pem"
    link.rename(target)
    link.symlink_to(target)
    return link, target


def _link_bundle(home: Path, elsewhere: Path) -> tuple[Path, Path]:
    link = home / "bundles" / "web0"
    link.rename(elsewhere)
    link.symlink_to(elsewhere, target_is_directory=True)
    return link, elsewhere


@pytest.mark.parametrize(("link_into_home", "role"), [
    (_link_admin_key, "private file"), (_link_bundle, "directory"),
])
def test_a_symbolic_link_where_a_key_belongs_is_refused(
    link_into_home: Callable[[Path, Path], tuple[Path, Path]], role: str,
    home: Path, tmp_path: Path, run: Run
) -> None:
    _with_bundle(run, home)
    link, target = link_into_home(home, tmp_path / "elsewhere")
    assert _mode(target) in (0o600, 0o700)  # safe modes: the link alone is refused
    err = refused(run("domain", "create", "web1", "--home", str(home)),
                  f"{link} is a symbolic link where a {role} belongs")
    assert "fix:" not in err
    _nothing_created(run, home)
    link.unlink()
    target.rename(link)
    assert run("domain", "create", "web1", "--home", str(home))[0] == 0


def test_a_fresh_home_and_its_domains_pass(home: Path, run: Run) -> None:
    check_home_permissions(Home.open(home))
    _with_bundle(run, home)
    assert run("domain", "create", "web1", "--home", str(home), "--out",
               str(home / "bundles" / "other"))[0] == 0
    check_home_permissions(Home.open(home))
    (home / "bundles" / "notes.txt").write_text("a file beside the bundles is not a bundle")
    check_home_permissions(Home.open(home))


def test_a_missing_entry_is_left_to_the_command_that_needs_it(home: Path) -> None:
    (home / "admin" / "key.pem").unlink()
    check_home_permissions(Home.open(home))


def test_the_tpm_directories_and_state_are_checked(home: Path) -> None:
    state = home / "tpm" / "state"
    sealed = home / "tpm" / "sealed"
    state.mkdir(mode=0o700, parents=True)
    sealed.mkdir(mode=0o700)
    for path in (state / "tpm2-00.permall", sealed / "ca-key.json", sealed / "recovery.json",
                 state / ".lock", sealed / "sealed-state.json"):
        path.write_bytes(b"x")
        path.chmod(0o644)
    (home / "tpm").chmod(0o775)
    with pytest.raises(UnsafePermissions) as refusal:
        check_home_permissions(Home.open(home))
    assert refusal.value.message.endswith(
        f"fix: chmod go-w {home}/tpm && chmod 600 {sealed}/ca-key.json {sealed}/recovery.json"
        f" {state}/tpm2-00.permall")


# -- serve and devrun ------------------------------------------------------------------


class _NoServer:
    """Stands in for the server's master: records that serving was reached, serves nothing."""

    def __init__(self) -> None:
        self.reached = False

    def run_server(self, _factory: object, tls: ServerTls, _options: object,
                   listener: socket.socket, _refuse: object, _restarts: object = None) -> int:
        assert isinstance(tls.context(), ssl.SSLContext)
        listener.close()
        self.reached = True
        return 0

    def configure_logging(self, *_: Any) -> None:
        return None


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> _NoServer:
    from bios_ws.server import master

    stand_in = _NoServer()
    monkeypatch.setattr(master, "run_server", stand_in.run_server)
    monkeypatch.setattr(master, "configure_logging", stand_in.configure_logging)
    return stand_in


@pytest.mark.parametrize("case", ["home o+w", "server key o+r", "passphrase o+r"])
def test_serve_refuses_before_unsealing_and_serves_after_the_chmod(
    case: str, home: Path, run: Run, no_server: _NoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    spoil, problem, _ = UNSAFE[case]
    path = spoil(home)
    read = Home.file_passphrase
    monkeypatch.setattr(Home, "file_passphrase", _forbidden)
    serve = ("serve", "--home", str(home), "--bind", "127.0.0.1:0", "--workers", "1")
    code, out, err = run(*serve)
    refused((code, out, err), f"{path} {problem}")
    assert out == "" and not no_server.reached
    _apply(_fix_command(err))
    monkeypatch.setattr(Home, "file_passphrase", read)
    code, out, err = run(*serve)
    assert (code, err) == (0, "")
    assert no_server.reached and "vbios: serving https://127.0.0.1:" in out


def _forbidden(*_: object) -> bytes:
    raise AssertionError("the key passphrase was read before the permissions were checked")


def test_devrun_refuses_an_existing_unsafe_home_before_anything(
    home: Path, run: Run, no_server: _NoServer
) -> None:
    key = home / "admin" / "key.pem"
    key.chmod(0o604)
    before = sorted(os.walk(home))
    code, out, err = run("devrun", "--home", str(home), "--no-tpm", "--bind", "127.0.0.1:0")
    refused((code, out, err), f"{key} (private key material, mode 0604)")
    assert _fix_command(err) == f"chmod 600 {key}"
    assert out == "" and not no_server.reached
    assert sorted(os.walk(home)) == before
    _nothing_created(run, home, "demo")
