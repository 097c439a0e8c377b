"""`vbios remote` and `vbios route` in-process on a home: a remote added from a host bundle
(its key kept encrypted, never in clear), routes set and shown, refusals with reasons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bios_ws.cli import main
from bios_ws.pki.certs import make_ca
from bios_ws.pki.files import find_clear_private_keys, is_clear_private_key_pem
from tests.cli_support import Run, refused
from tests.routing_support import NOW, write_bundle

URL = "https://127.0.0.1:9443/"


@pytest.fixture
def host_home(tmp_path: Path, run: Run) -> Path:
    path = tmp_path / "home-a"
    code, _, err = run("init", "--home", str(path), "--host-name", "host-a")
    assert code == 0, err
    code, _, err = run("domain", "create", "vm1", "--home", str(path))
    assert code == 0, err
    return path


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    write_bundle(tmp_path / "bundle", make_ca(NOW), "host-a")
    return tmp_path / "bundle"


def test_a_remote_is_added_listed_and_its_key_kept_encrypted(
        run: Run, host_home: Path, bundle: Path) -> None:
    home = str(host_home)
    code, out, err = run("remote", "add", "cloud-b", URL, "--bundle", str(bundle),
                         "--home", home)
    assert code == 0, err
    assert "remote cloud-b added" in out and "delete" in out
    kept = host_home / "pki" / "remotes" / "cloud-b-key.pem"
    assert kept.stat().st_mode & 0o777 == 0o600
    assert not is_clear_private_key_pem(kept.read_bytes())
    assert find_clear_private_keys(host_home / "pki") == []
    code, out, _ = run("remote", "list", "--json", "--home", home)
    assert code == 0
    [row] = json.loads(out)
    assert (row["name"], row["url"], row["routes"]) == ("cloud-b", URL, 0)
    code, out, _ = run("remote", "list", "--home", home)
    assert out.startswith("cloud-b  https://127.0.0.1:9443/  routes: 0")
    refused(run("remote", "add", "cloud-b", URL, "--bundle", str(bundle), "--home", home),
            "remote cloud-b exists already")


def test_routes_are_set_shown_and_block_the_removal_of_their_remote(
        run: Run, host_home: Path, bundle: Path) -> None:
    home = str(host_home)
    assert run("remote", "add", "cloud-b", URL, "--bundle", str(bundle), "--home", home)[0] == 0
    code, out, err = run("route", "set", "settings", "cloud-b", "--home", home)
    assert (code, out) == (0, "settings of every domain: served by remote cloud-b\n"), err
    code, out, err = run("route", "set", "events", "cloud-b", "--domain", "vm1",
                         "--home", home)
    assert code == 0, err
    code, out, _ = run("route", "show", "--json", "--home", home)
    assert json.loads(out)["routes"] == [
        {"capability": "events", "domain": "vm1", "target": "cloud-b", "cache_seconds": None},
        {"capability": "settings", "domain": None, "target": "cloud-b",
         "cache_seconds": None}]
    code, out, _ = run("route", "show", "--home", home)
    assert "settings" in out and "(all)" in out and "vm1" in out
    refused(run("remote", "remove", "cloud-b", "--home", home),
            "remote cloud-b serves events of vm1, settings")
    assert run("route", "set", "settings", "local", "--home", home)[0] == 0
    assert run("route", "set", "events", "local", "--domain", "vm1",
               "--home", home)[0] == 0
    code, out, err = run("remote", "remove", "cloud-b", "--home", home)
    assert code == 0, err
    assert not (host_home / "pki" / "remotes" / "cloud-b-key.pem").exists()
    assert run("route", "show", "--home", home)[1] == \
        "every capability is served here (no route)\n"


@pytest.mark.parametrize("capability, reason", [
    ("attestation", "attestation stays local: the quote and the boot measurements are of"
                    " this host's own TPM"),
    ("enrollment", "enrollment stays local: a guest's certificate is issued by the CA of"
                   " the host that runs its domain"),
    ("credentials", "credentials stays local: it serves no guest operation"),
])
def test_what_stays_local_is_refused_with_why(run: Run, host_home: Path, bundle: Path,
                                              capability: str, reason: str) -> None:
    home = str(host_home)
    assert run("remote", "add", "cloud-b", URL, "--bundle", str(bundle), "--home", home)[0] == 0
    refused(run("route", "set", capability, "cloud-b", "--home", home), reason)


def test_bundles_that_do_not_fit_are_refused(run: Run, host_home: Path, tmp_path: Path
                                             ) -> None:
    home = str(host_home)
    other = write_bundle(tmp_path / "other", make_ca(NOW), "host-z")
    assert other is not None
    refused(run("remote", "add", "cloud-b", URL, "--bundle", str(tmp_path / "other"),
                "--home", home), "is a credential of host host-z, and this home is host host-a")
    write_bundle(tmp_path / "mixed", make_ca(NOW), "host-a")
    (tmp_path / "mixed" / "ca.pem").write_bytes((tmp_path / "other" / "ca.pem").read_bytes())
    refused(run("remote", "add", "cloud-b", URL, "--bundle", str(tmp_path / "mixed"),
                "--home", home), "cert.pem is not issued by ca.pem")
    refused(run("remote", "add", "cloud-b", URL, "--bundle", str(tmp_path / "none"),
                "--home", home), "a host bundle holds cert.pem, key.pem and ca.pem")
    write_bundle(tmp_path / "ok", make_ca(NOW), "host-a")
    refused(run("remote", "add", "cloud-b", "http://127.0.0.1/", "--bundle",
                str(tmp_path / "ok"), "--home", home), "invalid remote URL")
    refused(run("remote", "add", "local", URL, "--bundle", str(tmp_path / "ok"),
                "--home", home), "'local' names this installation")
    assert not (host_home / "pki" / "remotes").exists() or \
        list((host_home / "pki" / "remotes").iterdir()) == []


def test_a_route_with_a_cache_is_set_and_shown(run: Run, host_home: Path, bundle: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    home = str(host_home)
    assert run("remote", "add", "cloud-b", URL, "--bundle", str(bundle), "--home", home)[0] == 0
    code, out, err = run("route", "set", "settings", "cloud-b", "--domain", "vm1",
                         "--cache", "120", "--home", home)
    assert (code, out) == (0, "settings of vm1: served by remote cloud-b; while it is"
                              " unavailable, reads from its answers at most 120 s old"
                              " (marked cached)\n"), err
    assert run("route", "set", "events", "cloud-b", "--home", home)[0] == 0
    code, out, _ = run("route", "show", "--json", "--home", home)
    assert json.loads(out)["routes"] == [
        {"capability": "events", "domain": None, "target": "cloud-b", "cache_seconds": None},
        {"capability": "settings", "domain": "vm1", "target": "cloud-b",
         "cache_seconds": 120}]
    code, out, _ = run("route", "show", "--home", home)
    lines = out.splitlines()
    assert lines[0].split() == ["CAPABILITY", "DOMAIN", "TARGET", "CACHE"]
    assert lines[1].split() == ["events", "(all)", "cloud-b", "-"]
    assert lines[2].split() == ["settings", "vm1", "cloud-b", "120s"]
    for value, reason in (("0", "invalid cache age 0"), ("-3", "invalid cache age -3"),
                          ("86401", "invalid cache age 86401: a whole number of seconds"
                                    " from 1 to 86400")):
        refused(run("route", "set", "settings", "cloud-b", "--cache", value, "--home", home),
                reason)
    refused(run("route", "set", "settings", "local", "--domain", "vm1", "--cache", "60",
                "--home", home), "a capability served here is never answered from one")
    with pytest.raises(SystemExit) as usage:
        main(["route", "set", "settings", "cloud-b", "--cache", "soon", "--home", home])
    assert usage.value.code == 2
    assert "'soon' is not a whole number of seconds" in capsys.readouterr().err
    assert json.loads(run("route", "show", "--json", "--home", home)[1])["routes"][1][
        "cache_seconds"] == 120  # the refusals changed nothing


def test_route_refusals(run: Run, host_home: Path, bundle: Path) -> None:
    home = str(host_home)
    refused(run("route", "set", "events", "nowhere", "--home", home), "no remote named nowhere")
    refused(run("route", "set", "bogus", "local", "--home", home),
            "no capability named 'bogus'; routable: settings, events")
    refused(run("remote", "remove", "nowhere", "--home", home), "no remote named nowhere")
