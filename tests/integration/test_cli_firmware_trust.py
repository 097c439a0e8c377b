"""`vbios firmware trust add|remove|list`: what the admin types and sees, every refusal a
single line with nothing changed; `vbios capsule show --home` verifies against the set."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from tests.cli_support import Run, refused
from tests.firmware_pki import NOW, SignerPki, issue, make_pki, write_pem

FIRMWARE_CLASS = "3f0c1d2e-4b5a-4c6d-8e7f-90a1b2c3d4e5"


@pytest.fixture(scope="module")
def pki() -> SignerPki:
    return make_pki()


def listed(run: Run, home: Path) -> list[dict[str, str]]:
    code, out, err = run("firmware", "trust", "list", "--json", "--home", str(home))
    assert code == 0, err
    rows: list[dict[str, str]] = json.loads(out)
    return rows


def test_add_list_remove(run: Run, home: Path, tmp_path: Path, pki: SignerPki) -> None:
    root = write_pem(tmp_path / "root.pem", pki.root.cert_pem())
    leaf = write_pem(tmp_path / "leaf.pem", pki.leaf.cert_pem())
    code, out, _ = run("firmware", "trust", "list", "--home", str(home))
    assert code == 0 and "no trusted firmware signers" in out

    code, out, err = run("firmware", "trust", "add", str(root), "--home", str(home))
    assert code == 0, err
    assert out.startswith("trusted: CN=Test Firmware Root, SHA-256 ")
    code, out, err = run("firmware", "trust", "add", str(root), "--home", str(home))
    assert code == 0, err
    assert out.startswith("already trusted (nothing changed): CN=Test Firmware Root")
    assert run("firmware", "trust", "add", str(leaf), "--home", str(home))[0] == 0

    rows = listed(run, home)
    assert {row["subject"] for row in rows} == {"CN=Test Firmware Root",
                                                "CN=Test Capsule Signer"}
    root_row = next(row for row in rows if row["subject"] == "CN=Test Firmware Root")
    assert len(root_row["sha256_fingerprint"]) == 64
    code, out, _ = run("firmware", "trust", "list", "--home", str(home))
    assert root_row["sha256_fingerprint"] in out and "CN=Test Capsule Signer" in out

    code, out, err = run("firmware", "trust", "remove", root_row["sha256_fingerprint"],
                         "--home", str(home))
    assert code == 0, err
    assert out.startswith("no longer trusted: CN=Test Firmware Root")
    code, out, err = run("firmware", "trust", "remove", str(leaf), "--home", str(home))
    assert code == 0, err
    assert listed(run, home) == []


def test_refusals_are_one_line_and_change_nothing(run: Run, home: Path, tmp_path: Path,
                                                  pki: SignerPki) -> None:
    root = write_pem(tmp_path / "root.pem", pki.root.cert_pem())
    assert run("firmware", "trust", "add", str(root), "--home", str(home))[0] == 0
    before = listed(run, home)
    expired = issue("Old Signer", pki.root, ca=False, not_before=NOW - timedelta(days=900),
                    not_after=NOW - timedelta(days=500))
    old = write_pem(tmp_path / "old.pem", expired.cert_pem())
    junk = tmp_path / "junk.pem"
    junk.write_bytes(b"not a certificate")
    other = write_pem(tmp_path / "other.pem", pki.intermediate.cert_pem())

    refused(run("firmware", "trust", "add", str(old), "--home", str(home)), "expired on")
    refused(run("firmware", "trust", "add", str(junk), "--home", str(home)),
            "not a certificate")
    refused(run("firmware", "trust", "add", str(tmp_path / "missing.pem"), "--home", str(home)),
            "missing.pem")
    refused(run("firmware", "trust", "remove", str(other), "--home", str(home)),
            "no trusted firmware signer")
    refused(run("firmware", "trust", "remove", "0" * 64, "--home", str(home)),
            "no trusted firmware signer")
    refused(run("firmware", "trust", "remove", "nothing-here", "--home", str(home)),
            "not a SHA-256 fingerprint")
    assert listed(run, home) == before


def test_capsule_show_with_home_verifies_against_the_trusted_set(
        run: Run, home: Path, tmp_path: Path, pki: SignerPki) -> None:
    image = tmp_path / "image.bin"
    image.write_bytes(b"\x90" * 1024)
    cert = write_pem(tmp_path / "signer.pem", pki.chained_leaf.cert_pem(),
                     pki.intermediate.cert_pem())
    key = write_pem(tmp_path / "signer.key", pki.chained_leaf.key_pem())
    capsule = tmp_path / "fw.cap"
    code, _, err = run("capsule", "create", "--image", str(image), "--guid", FIRMWARE_CLASS,
                       "--fw-version", "2", "--lowest-supported", "1", "--monotonic-count", "1",
                       "--signer-cert", str(cert), "--signer-key", str(key), "--out",
                       str(capsule))
    assert code == 0, err

    code, out, _ = run("capsule", "show", str(capsule), "--home", str(home))
    assert code == 1
    assert "signature: NOT verified (untrusted-signer)" in out

    root = write_pem(tmp_path / "root.pem", pki.root.cert_pem())
    assert run("firmware", "trust", "add", str(root), "--home", str(home))[0] == 0
    code, out, err = run("capsule", "show", str(capsule), "--home", str(home), "--json")
    assert code == 0, err
    assert json.loads(out)["signature"]["verified"] is True
