"""`vbios cert list|issue|revoke` and `vbios admin rotate`: what the admin sees, what the
store and the CRL then hold, and every refusal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from bios_ws.home import Home
from bios_ws.pki import Authority
from bios_ws.pki.crl import CrlFile
from tests.cli_support import Run, refused


def serial_of(bundle: Path) -> str:
    cert = x509.load_pem_x509_certificate((bundle / "cert.pem").read_bytes())
    return format(cert.serial_number, "X")


def listed(run: Run, home: Path, *extra: str) -> list[dict[str, Any]]:
    code, out, err = run("cert", "list", "--json", "--home", str(home), *extra)
    assert (code, err) == (0, "")
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def crl_serials(home: Path) -> set[str]:
    opened = Home.open(home)
    state = CrlFile(opened.crl_file, Authority.load(opened).cert).read()
    assert state is not None
    return {format(serial, "X") for serial in state.serials}


def test_list_shows_every_client_certificate_with_its_status(home: Path, run: Run) -> None:
    assert run("domain", "create", "web1", "--home", str(home))[0] == 0
    rows = listed(run, home)
    assert [(r["role"], r["domain"], r["status"]) for r in rows] == [
        ("admin", None, "active"), ("guest", "web1", "active")]
    guest = rows[1]
    assert guest["serial"] == serial_of(home / "bundles" / "web1")
    assert guest["subject"] == "web1"
    assert guest["san"][0] == "urn:vbios:domain:web1"
    assert guest["san"][1].startswith("urn:vbios:incarnation:")
    assert guest["not_after"] > guest["serial"][:0]  # present, ISO text
    assert listed(run, home, "--domain", "web1") == [guest]
    code, out, _ = run("cert", "list", "--home", str(home))
    assert code == 0
    assert out.splitlines()[0].split() == ["SERIAL", "ROLE", "DOMAIN", "SUBJECT", "NOT_AFTER",
                                           "STATUS"]
    assert guest["serial"] in out


def test_revoke_a_serial_publishes_the_crl_at_once(home: Path, run: Run) -> None:
    assert run("domain", "create", "web1", "--home", str(home))[0] == 0
    serial = serial_of(home / "bundles" / "web1")
    code, out, err = run("cert", "revoke", serial, "--reason", "keyCompromise",
                         "--home", str(home))
    assert (code, err) == (0, "")
    assert f"revoked {serial} (domain web1, web1)" in out
    assert crl_serials(home) == {serial}
    [guest] = listed(run, home, "--domain", "web1")
    assert (guest["status"], guest["reason"]) == ("revoked", "keyCompromise")
    assert run("cert", "revoke", serial.lower(), "--home", str(home))[1].startswith(
        "nothing to revoke")


def test_revoke_a_domain_and_issue_it_a_new_bundle(home: Path, run: Run, tmp_path: Path
                                                   ) -> None:
    assert run("domain", "create", "web1", "--home", str(home))[0] == 0
    second = tmp_path / "second"
    code, out, _ = run("cert", "issue", "--domain", "web1", "--out", str(second),
                       "--home", str(home))
    assert code == 0 and serial_of(second) in out
    code, out, _ = run("cert", "revoke", "--domain", "web1", "--home", str(home))
    assert code == 0 and out.count("revoked ") == 2
    assert crl_serials(home) == {serial_of(home / "bundles" / "web1"), serial_of(second)}
    third = tmp_path / "third"
    assert run("cert", "issue", "--domain", "web1", "--out", str(third), "--home",
               str(home))[0] == 0
    statuses = {r["serial"]: r["status"] for r in listed(run, home, "--domain", "web1")}
    assert statuses[serial_of(third)] == "active"


def test_deleting_a_domain_revokes_its_certificates(home: Path, run: Run) -> None:
    assert run("domain", "create", "web1", "--home", str(home))[0] == 0
    serial = serial_of(home / "bundles" / "web1")
    code, out, _ = run("domain", "delete", "web1", "--home", str(home))
    assert code == 0 and "every certificate it had is revoked" in out
    assert crl_serials(home) == {serial}
    assert run("domain", "create", "web1", "--home", str(home))[0] == 0
    old, new = listed(run, home, "--domain", "web1")
    assert (old["serial"], old["status"], new["status"]) == (serial, "revoked", "active")
    assert old["san"][1] != new["san"][1]  # another incarnation


def test_admin_rotate_writes_a_new_bundle_and_revokes_the_old(home: Path, run: Run) -> None:
    before = serial_of(home / "admin")
    code, out, err = run("admin", "rotate", "--home", str(home))
    assert (code, err) == (0, "")
    after = serial_of(home / "admin")
    assert after != before and after in out
    assert crl_serials(home) == {before}
    statuses = {r["serial"]: r["status"] for r in listed(run, home) if r["role"] == "admin"}
    assert statuses == {before: "revoked", after: "active"}
    assert oct((home / "admin" / "key.pem").stat().st_mode & 0o777) == "0o600"


def test_refusals(home: Path, run: Run, tmp_path: Path) -> None:
    assert run("domain", "create", "web1", "--home", str(home))[0] == 0
    guest = serial_of(home / "bundles" / "web1")
    refused(run("cert", "revoke", "--admin", guest, "--home", str(home)),
            f"no admin certificate with serial {guest}")
    refused(run("cert", "revoke", "XYZ", "--home", str(home)),
            "not a certificate serial: 'XYZ': give the serial in hex")
    refused(run("cert", "revoke", "ABCDEF", "--home", str(home)),
            "no certificate with serial ABCDEF")
    refused(run("cert", "revoke", "--domain", "nope", "--home", str(home)), "no domain 'nope'")
    refused(run("cert", "issue", "--domain", "nope", "--out", str(tmp_path / "x"),
                "--home", str(home)), "no domain 'nope'")
    assert not (tmp_path / "x").exists()
    used = tmp_path / "used"
    used.mkdir()
    (used / "key.pem").write_text("precious")
    refused(run("cert", "issue", "--domain", "web1", "--out", str(used), "--home", str(home)),
            "is not empty")
    assert [r["status"] for r in listed(run, home)] == ["active", "active"]
    outcomes = run("audit", "show", "--json", "--home", str(home))[1]
    refusals = [e for e in json.loads(outcomes) if e["outcome"].startswith("refused")]
    assert {e["operation"] for e in refusals} == {"RevokeCertificate", "IssueCertificate"}


def test_guest_certificates_are_short_lived_and_their_life_is_configurable(
    home: Path, run: Run, tmp_path: Path,
) -> None:
    def lifetime(bundle: Path) -> float:
        cert = x509.load_pem_x509_certificate((bundle / "cert.pem").read_bytes())
        return (cert.not_valid_after_utc - cert.not_valid_before_utc).total_seconds() / 86400

    assert run("domain", "create", "web1", "--home", str(home))[0] == 0
    assert 30 <= lifetime(home / "bundles" / "web1") < 30.01  # the default
    assert run("domain", "create", "web2", "--guest-cert-days", "2", "--home",
               str(home))[0] == 0
    assert 2 <= lifetime(home / "bundles" / "web2") < 2.01
    out = tmp_path / "short"
    assert run("cert", "issue", "--domain", "web1", "--out", str(out), "--guest-cert-days",
               "7", "--home", str(home))[0] == 0
    assert 7 <= lifetime(out) < 7.01
    for bad in ("0", "366", "x"):
        with pytest.raises(SystemExit):
            run("cert", "issue", "--domain", "web1", "--out", str(tmp_path / "no"),
                "--guest-cert-days", bad, "--home", str(home))
