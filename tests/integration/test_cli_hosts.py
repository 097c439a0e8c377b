"""Two homes (two hosts) on one store (``empty_url``: a SQLite file beside them, or a
PostgreSQL database), by the admin's command line: `vbios init
--host-name`, `vbios host list`, the host of each domain, `vbios domain take`."""

from __future__ import annotations

import json
from pathlib import Path

from bios_ws.home import Home
from tests.cli_support import Run, refused


def homes(run: Run, tmp_path: Path, url: str) -> tuple[str, str]:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    for home, name in ((a, "host-a"), (b, "host-b")):
        code, out, err = run("init", "--home", home, "--store", url, "--host-name", name)
        assert code == 0, err
        assert f"host name:          {name} (in that store)" in out
    return a, b


def test_two_homes_share_one_store_as_two_hosts(run: Run, tmp_path: Path,
                                                empty_url: str) -> None:
    a, b = homes(run, tmp_path, empty_url)
    assert run("domain", "create", "vm1", "--home", a)[0] == 0
    assert run("domain", "create", "vm2", "--home", b)[0] == 0
    code, out, _ = run("domain", "list", "--home", b, "--json")
    assert code == 0
    assert {row["domain"]: row["host"] for row in json.loads(out)} == {
        "vm1": "host-a", "vm2": "host-b"}
    code, out, _ = run("host", "list", "--home", b, "--json")
    listed = json.loads(out)
    assert [(h["host"], h["this_home"], h["domains"], h["tpm"]) for h in listed] == [
        ("host-a", False, 1, "none"), ("host-b", True, 1, "none")]
    assert listed[0]["ca_sha256"] != listed[1]["ca_sha256"]
    code, out, _ = run("host", "list", "--home", a)
    assert code == 0 and "host-a *" in out and "(* this home)" in out
    code, out, _ = run("domain", "show", "vm1", "--home", b, "--json")
    assert code == 0 and json.loads(out)["host"] == "host-a"
    refused(run("domain", "power", "get", "vm1", "--home", b), "domain vm1 runs on host host-a")
    code, out, _ = run("audit", "verify", "--home", a)
    assert code == 0 and "intact" in out


def test_a_host_takes_a_domain_over(run: Run, tmp_path: Path, empty_url: str) -> None:
    a, b = homes(run, tmp_path, empty_url)
    assert run("domain", "create", "vm1", "--home", a)[0] == 0
    code, out, err = run("domain", "take", "vm1", "--home", b)
    assert code == 0, err
    assert "vm1 now runs on this host (host-b), no longer on host-a" in out
    assert "vbios domain enroll vm1" in out
    code, out, _ = run("domain", "power", "get", "vm1", "--home", b, "--json")
    assert code == 0 and json.loads(out)["power_state"] == "Off"
    refused(run("domain", "power", "reset", "vm1", "On", "--home", a),
            "domain vm1 runs on host host-b")
    code, out, _ = run("domain", "take", "vm1", "--home", b)
    assert code == 0 and "runs on this host (host-b) already" in out


def test_a_host_name_another_home_holds_is_refused_at_init(
        run: Run, tmp_path: Path, empty_url: str) -> None:
    homes(run, tmp_path, empty_url)
    third = tmp_path / "c"
    refused(run("init", "--home", str(third), "--store", empty_url, "--host-name", "host-a"),
            "host name host-a is already registered in this store by another installation")
    assert not (third / "pki" / "ca.pem").exists()
    refused(run("init", "--home", str(tmp_path / "d"), "--host-name", "Bad_Name"),
            "invalid host name 'Bad_Name'")


def test_a_home_without_a_recorded_name_takes_the_machines_name(tmp_path: Path) -> None:
    import socket

    from bios_ws.domain.hosts import default_host_name

    home = Home.create(tmp_path / "old")
    assert home.host_name == default_host_name(socket.gethostname())
    assert default_host_name("Build_Box.Example.") == "buildbox.example"
    assert default_host_name("___") == "localhost"
