"""`vbios host add|list|revoke|remove` for delegate hosts (``docs/remote.md``), by the
command line on a home of its own."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from cryptography import x509

from tests.cli_support import Run, refused


def test_a_delegate_host_gets_a_bundle_and_is_listed_with_its_domains(
        run: Run, home: Path, tmp_path: Path) -> None:
    h = str(home)
    for name in ("vm1", "vm2", "vm3"):
        assert run("domain", "create", name, "--home", h)[0] == 0
    bundle = tmp_path / "rack1-a"
    code, out, err = run("host", "add", "rack1-a", "--domains", "vm2,vm1", "--out",
                         str(bundle), "--home", h)
    assert code == 0, err
    assert "which may speak for vm1, vm2" in out and "vbios remote add" in out
    assert sorted(p.name for p in bundle.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
    assert stat.S_IMODE((bundle / "key.pem").stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((bundle / "cert.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["urn:vbios:host:rack1-a"]
    assert (bundle / "ca.pem").read_bytes() == (home / "pki" / "ca.pem").read_bytes()

    code, out, _ = run("host", "list", "--home", h, "--json")
    assert code == 0
    rows = {row["host"]: row for row in json.loads(out)}
    delegate = rows["rack1-a"]
    assert (delegate["kind"], delegate["granted"], delegate["domains"], delegate["status"]) \
        == ("delegate", ["vm1", "vm2"], 2, "active")
    assert delegate["certificate"] == format(cert.serial_number, "X")
    assert {row["kind"] for host, row in rows.items() if host != "rack1-a"} <= {"store"}
    code, out, _ = run("host", "list", "--home", h)
    assert code == 0 and "KIND" in out
    line = next(line for line in out.splitlines() if line.startswith("rack1-a"))
    assert "delegate" in line and "vm1,vm2" in line and "active until" in line

    code, out, _ = run("cert", "list", "--home", h, "--json")
    hosts = [row for row in json.loads(out) if row["role"] == "host"]
    assert [(row["subject"], row["domain"], row["san"]) for row in hosts] == [
        ("rack1-a", None, ["urn:vbios:host:rack1-a"])]


def test_refusals_are_one_line(run: Run, home: Path, tmp_path: Path) -> None:
    h = str(home)
    assert run("domain", "create", "vm1", "--home", h)[0] == 0
    out = str(tmp_path / "b")
    refused(run("host", "add", "Rack_1", "--domains", "vm1", "--out", out, "--home", h),
            "invalid host name")
    refused(run("host", "add", "rack1-a", "--domains", "ghost", "--out", out, "--home", h),
            "no domain 'ghost'")
    refused(run("host", "add", "rack1-a", "--domains", ",", "--out", out, "--home", h),
            "name the domains")
    refused(run("host", "add", "rack1-a", "--domains", "VM1", "--out", out, "--home", h),
            "invalid domain id")
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())
    assert run("host", "add", "rack1-a", "--domains", "vm1", "--out", out, "--home", h)[0] == 0
    refused(run("host", "add", "rack1-a", "--domains", "vm1", "--out", str(tmp_path / "c"),
                "--home", h), "holds an active certificate")
    refused(run("host", "add", "rack1-a", "--domains", "vm1", "--out", out, "--home", h),
            "is not empty")
    refused(run("host", "revoke", "nobody", "--home", h), "no delegate host nobody")
    refused(run("host", "remove", "nobody", "--home", h), "no delegate host nobody")
    code, listed, _ = run("host", "list", "--home", h, "--json")
    store_hosts = [row["host"] for row in json.loads(listed) if row["kind"] == "store"]
    for name in store_hosts:
        refused(run("host", "add", name, "--domains", "vm1", "--out", str(tmp_path / "d"),
                    "--home", h), "is a host of this store")
    code, out, _ = run("host", "add", "rack1-b", "--domains", "ghost", "--out",
                       str(tmp_path / "e"), "--home", h, "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "DomainNotFound"


def test_revoke_keeps_the_grants_and_remove_drops_them(run: Run, home: Path,
                                                      tmp_path: Path) -> None:
    h = str(home)
    assert run("domain", "create", "vm1", "--home", h)[0] == 0
    assert run("host", "add", "rack1-a", "--domains", "vm1", "--out", str(tmp_path / "1"),
               "--home", h)[0] == 0
    code, out, _ = run("host", "revoke", "rack1-a", "--home", h, "--json")
    assert code == 0
    revoked = json.loads(out)
    assert len(revoked["revoked"]) == 1 and revoked["removed"] is False
    code, out, _ = run("host", "revoke", "rack1-a", "--home", h)
    assert code == 0 and "already revoked" in out

    code, out, _ = run("host", "list", "--home", h, "--json")
    row = next(r for r in json.loads(out) if r["host"] == "rack1-a")
    assert (row["granted"], row["status"]) == (["vm1"], "revoked")
    code, out, _ = run("cert", "list", "--home", h, "--json")
    assert [r["status"] for r in json.loads(out) if r["role"] == "host"] == ["revoked"]

    # a new certificate after the revocation: the host may speak for what it names now
    assert run("domain", "create", "vm2", "--home", h)[0] == 0
    assert run("host", "add", "rack1-a", "--domains", "vm2", "--out", str(tmp_path / "2"),
               "--home", h)[0] == 0
    code, out, _ = run("host", "remove", "rack1-a", "--home", h)
    assert code == 0 and "may speak for no domain any more" in out and "revoked" in out
    code, out, _ = run("host", "list", "--home", h, "--json")
    row = next(r for r in json.loads(out) if r["host"] == "rack1-a")
    assert (row["granted"], row["status"]) == ([], "revoked")
    code, out, _ = run("audit", "show", "--home", h, "--json")
    assert code == 0
    operations = [e["operation"] for e in json.loads(out)]
    assert {"AddHost", "RevokeHost", "RemoveHost"} <= set(operations)


def test_a_home_may_not_take_a_delegate_hosts_name(run: Run, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fleet.db'}"
    a = str(tmp_path / "a")
    code, _, err = run("init", "--home", a, "--store", url, "--host-name", "host-a")
    assert code == 0, err
    assert run("domain", "create", "vm1", "--home", a)[0] == 0
    assert run("host", "add", "rack1-a", "--domains", "vm1", "--out", str(tmp_path / "x"),
               "--home", a)[0] == 0
    refused(run("init", "--home", str(tmp_path / "b"), "--store", url, "--host-name",
                "rack1-a"), "rack1-a is a delegate host")
    assert not (tmp_path / "b" / "pki").exists()  # refused before any key was made
