"""Secure Boot through XML and the guest library in-process, and `vbios domain secureboot`."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import vbios_client as vc
from vbios_client import cli

from bios_ws.registry_file import load_registry
from bios_ws.soap.testing import Endpoint, build_endpoint
from tests.cli_support import Run, refused
from tests.integration.test_client_inprocess import URL, WsgiAdapter
from tests.unit.test_service_secureboot import PLATFORM_KEY, certificate, pem


@pytest.fixture
def ep() -> Endpoint:
    return build_endpoint(registry=load_registry())


@pytest.fixture
def bios(ep: Endpoint) -> Iterator[vc.BiosClient]:
    session = requests.Session()
    session.trust_env = False
    session.mount("https://", WsgiAdapter(ep.app, ep.guest))
    with vc.BiosClient._over_session(URL, session, timeout=5) as client:
        yield client


def test_get_set_and_reset_through_the_library(bios: vc.BiosClient) -> None:
    view = bios.get_secure_boot()
    assert view == vc.SecureBoot(enabled=True, current_boot="Unknown", mode="SetupMode",
                                 pending_enabled=None)  # the endpoint's default set: no keys
    bios.set_secure_boot(False)
    assert bios.get_secure_boot().pending_enabled is False
    bios.reset_secure_boot_keys("DeleteAllKeys")
    databases = bios.get_secure_boot_databases()
    assert list(databases) == ["PK", "KEK", "db", "dbx"]
    assert all(certs == [] for certs in databases.values())
    with pytest.raises(ValueError):
        bios.reset_secure_boot_keys("DeleteEverything")


def test_admin_certificates_over_xml(ep: Endpoint) -> None:
    body = (f"<tns:Domain>vm1</tns:Domain><tns:Database>db</tns:Database>"
            f"<tns:Certificate>{pem(PLATFORM_KEY)}</tns:Certificate>")
    added = ep.call("AddSecureBootCertificate", body, as_=ep.admin)
    assert added.status == 200, added.body
    listed = ep.call("GetSecureBootDatabases")
    sha = listed.xml().findtext(".//{urn:bios-ws:vbios:v1}Sha256")
    assert sha is not None and len(sha) == 64
    bad_db = ep.call("AddSecureBootCertificate", body.replace(">db<", ">nodb<"), as_=ep.admin)
    assert bad_db.detail("Code") == "InvalidRequest"
    duplicate = ep.call("AddSecureBootCertificate", body, as_=ep.admin)
    assert (duplicate.detail("Code"), duplicate.detail("Attribute")) == (
        "InvalidSecureBootChange", "db")
    by_guest = ep.call("AddSecureBootCertificate", body)
    assert by_guest.detail("Code") == "AccessDenied"
    removed = ep.call("RemoveSecureBootCertificate", f"<tns:Domain>vm1</tns:Domain>"
                      f"<tns:Database>db</tns:Database><tns:Sha256>{sha}</tns:Sha256>",
                      as_=ep.admin)
    assert removed.status == 200, removed.body


def cli_run(bios: vc.BiosClient, monkeypatch: pytest.MonkeyPatch,
            *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(cli, "_connect", lambda args: bios)
    out, err = io.StringIO(), io.StringIO()
    code = cli.main(["--url", URL, "--bundle", "unused", *argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_vbios_client_secureboot(bios: vc.BiosClient, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = cli_run(bios, monkeypatch, "secureboot", "get", "--json")
    assert code == 0
    assert json.loads(out) == {"enabled": True, "current_boot": "Unknown",
                               "mode": "SetupMode", "pending_enabled": None}
    assert cli_run(bios, monkeypatch, "secureboot", "disable")[0] == 0
    code, out, _ = cli_run(bios, monkeypatch, "secureboot", "get")
    assert "at next reset = Disabled" in out
    assert cli_run(bios, monkeypatch, "secureboot", "reset-keys", "DeletePK")[0] == 0
    code, out, _ = cli_run(bios, monkeypatch, "secureboot", "databases", "--json")
    assert code == 0 and set(json.loads(out)) == {"PK", "KEK", "db", "dbx"}


def test_vbios_domain_secureboot_and_disks(home: Path, run: Run, tmp_path: Path) -> None:
    disk = tmp_path / "esp"
    disk.mkdir()
    code, _, err = run("domain", "create", "vm1", "--disk", str(disk), "--home", str(home))
    assert code == 0, err
    code, out, _ = run("domain", "disk", "list", "vm1", "--json", "--home", str(home))
    assert json.loads(out) == [str(disk)]
    image = tmp_path / "disk.img"
    image.write_bytes(b"\0" * 4096)
    assert run("domain", "disk", "attach", "vm1", str(image), "--home", str(home))[0] == 0
    refused(run("domain", "disk", "attach", "vm1", str(tmp_path / "missing.img"),
                "--home", str(home)), "does not exist")
    assert run("domain", "disk", "detach", "vm1", str(disk), "--home", str(home))[0] == 0
    code, out, _ = run("domain", "disk", "list", "vm1", "--home", str(home))
    assert out.splitlines() == [f"0  {image}  (boot disk)"]
    tftp = tmp_path / "tftp"
    tftp.mkdir()
    (tftp / "boot.efi").write_bytes(b"MZ")
    assert run("domain", "netboot", "vm1", "--tftp", str(tftp), "--bootfile", "boot.efi",
               "--home", str(home))[0] == 0
    refused(run("domain", "netboot", "vm1", "--tftp", str(tftp), "--bootfile", "nope.efi",
                "--home", str(home)), "nope.efi")
    cert = tmp_path / "db.pem"
    cert.write_text(pem(certificate("admin db key")))
    code, out, err = run("domain", "secureboot", "add-cert", "vm1", "db", str(cert),
                         "--home", str(home))
    assert code == 0, err
    assert run("domain", "secureboot", "remove-cert", "vm1", "db", str(cert),
               "--home", str(home))[0] == 0
    junk = tmp_path / "junk.pem"
    junk.write_text("hello")
    refused(run("domain", "secureboot", "add-cert", "vm1", "db", str(junk), "--home",
                str(home)), "not a PEM X.509 certificate")
    code, out, _ = run("audit", "show", "--json", "--home", str(home))
    operations = [e["operation"] for e in json.loads(out)]
    assert {"AttachDisk", "DetachDisk", "SetNetworkBoot", "AddSecureBootCertificate",
            "RemoveSecureBootCertificate"} <= set(operations)
