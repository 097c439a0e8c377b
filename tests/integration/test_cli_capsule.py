"""`vbios capsule create|show`: what the admin types, what is written, and every refusal a
single line with nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bios_ws.domain.capsule import parse_capsule
from tests.cli_support import Run, refused
from tests.firmware_pki import SignerPki, issue, make_pki, write_pem

FIRMWARE_CLASS = "3f0c1d2e-4b5a-4c6d-8e7f-90a1b2c3d4e5"


@pytest.fixture(scope="module")
def pki() -> SignerPki:
    return make_pki()


@pytest.fixture
def files(tmp_path: Path, pki: SignerPki) -> dict[str, Path]:
    image = tmp_path / "image.bin"
    image.write_bytes(b"\x90" * 4096)
    return {
        "image": image,
        "cert": write_pem(tmp_path / "signer.pem", pki.chained_leaf.cert_pem(),
                          pki.intermediate.cert_pem()),
        "key": write_pem(tmp_path / "signer.key", pki.chained_leaf.key_pem()),
        "root": write_pem(tmp_path / "root.pem", pki.root.cert_pem()),
        "out": tmp_path / "fw.cap",
    }


def create_args(files: dict[str, Path], **changes: str) -> list[str]:
    options = {"--image": str(files["image"]), "--guid": FIRMWARE_CLASS, "--fw-version": "0x10002",
               "--lowest-supported": "65536", "--monotonic-count": "9",
               "--signer-cert": str(files["cert"]), "--signer-key": str(files["key"]),
               "--out": str(files["out"])}
    options.update({f"--{name.replace('_', '-')}": value for name, value in changes.items()})
    return ["capsule", "create", *[item for pair in options.items() for item in pair]]


def test_create_writes_a_capsule_that_show_describes_and_verifies(run: Run,
                                                                  files: dict[str, Path]) -> None:
    code, out, err = run(*create_args(files))
    assert code == 0, err
    assert "signed by CN=Test Chained Capsule Signer" in out
    capsule = parse_capsule(files["out"].read_bytes())
    assert capsule.payload_header.fw_version == 0x10002
    assert capsule.payload_header.lowest_supported_version == 0x10000
    assert capsule.authentication.monotonic_count == 9
    assert str(capsule.image_header.update_image_type_id) == FIRMWARE_CLASS

    code, out, err = run("capsule", "show", str(files["out"]), "--trust", str(files["root"]))
    assert code == 0, err
    assert f"update_image_type_id: {FIRMWARE_CLASS}" in out
    assert "fw_version: 0x10002" in out
    assert "monotonic_count: 9" in out
    assert "signature: verified; signer CN=Test Chained Capsule Signer" in out

    code, out, _ = run("capsule", "show", str(files["out"]))
    assert code == 0
    assert "signature: not checked" in out


def test_show_json(run: Run, files: dict[str, Path]) -> None:
    assert run(*create_args(files))[0] == 0
    code, out, err = run("capsule", "show", str(files["out"]), "--json", "--trust",
                         str(files["root"]))
    assert code == 0, err
    report = json.loads(out)
    assert report["capsule_header"]["capsule_guid"] == "6dcbd5ed-e82d-4c44-bda1-7194199ad92a"
    assert report["capsule_header"]["header_size"] == 32
    assert report["image_header"]["version"] == 3
    assert report["image_header"]["update_image_type_id"] == FIRMWARE_CLASS
    assert report["payload_header"] == {"fw_version": 0x10002, "lowest_supported_version": 65536}
    assert report["authentication"]["monotonic_count"] == 9
    assert report["image"]["size"] == 4096
    assert report["signature"]["verified"] is True
    assert report["signature"]["signer"]["subject"] == "CN=Test Chained Capsule Signer"


def test_show_against_another_trust_set_says_why_and_exits_1(run: Run, files: dict[str, Path],
                                                             tmp_path: Path) -> None:
    assert run(*create_args(files))[0] == 0
    other = write_pem(tmp_path / "other.pem", make_pki("Other").root.cert_pem())
    code, out, _ = run("capsule", "show", str(files["out"]), "--trust", str(other))
    assert code == 1
    assert "signature: NOT verified (untrusted-signer)" in out
    code, out, _ = run("capsule", "show", str(files["out"]), "--json", "--trust", str(other))
    assert code == 1
    assert json.loads(out)["signature"]["reason"] == "untrusted-signer"


def test_show_refuses_a_damaged_capsule_naming_the_field(run: Run, files: dict[str, Path]) -> None:
    assert run(*create_args(files))[0] == 0
    data = files["out"].read_bytes()
    files["out"].write_bytes(data[:-1])
    refused(run("capsule", "show", str(files["out"])), "EFI_CAPSULE_HEADER.CapsuleImageSize")


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"guid": "not-a-guid"}, "--guid: 'not-a-guid' is not a GUID"),
    ({"fw_version": "4294967296"}, "--fw-version: 4294967296 is outside"),
    ({"fw_version": "-1"}, "--fw-version: -1 is outside"),
    ({"lowest_supported": "ten"}, "--lowest-supported: 'ten' is not a number"),
    ({"monotonic_count": str(2**64)}, "--monotonic-count"),
    ({"fw_version": "1", "lowest_supported": "2"}, "LowestSupportedVersion"),
    ({"image": "/nonexistent/image.bin"}, "does not exist"),
    ({"signer_key": "/nonexistent/key.pem"}, "does not exist"),
])
def test_create_refuses_bad_input_and_writes_nothing(run: Run, files: dict[str, Path],
                                                     changes: dict[str, str],
                                                     fragment: str) -> None:
    refused(run(*create_args(files, **changes)), fragment)
    assert list(files["out"].parent.glob("*.cap*")) == []
    assert list(files["out"].parent.glob(".fw.cap*")) == []


def test_create_refuses_a_key_that_is_not_the_signers(run: Run, files: dict[str, Path],
                                                      pki: SignerPki, tmp_path: Path) -> None:
    wrong = write_pem(tmp_path / "wrong.key", pki.leaf.key_pem())
    refused(run(*create_args(files, signer_key=str(wrong))), "does not belong")
    garbage = write_pem(tmp_path / "garbage.pem", b"hello")
    refused(run(*create_args(files, signer_cert=str(garbage))), "no PEM certificate")
    refused(run(*create_args(files, signer_key=str(garbage))), "no PEM private key")
    assert not files["out"].exists()


def test_create_refuses_an_empty_image(run: Run, files: dict[str, Path]) -> None:
    files["image"].write_bytes(b"")
    refused(run(*create_args(files)), "image")
    assert not files["out"].exists()


def test_a_capsule_signed_with_an_rsa_key_round_trips(run: Run, files: dict[str, Path],
                                                      pki: SignerPki, tmp_path: Path) -> None:
    leaf = issue("RSA Signer", pki.root, ca=False, rsa_key=True)
    cert = write_pem(tmp_path / "rsa.pem", leaf.cert_pem())
    key = write_pem(tmp_path / "rsa.key", leaf.key_pem())
    assert run(*create_args(files, signer_cert=str(cert), signer_key=str(key)))[0] == 0
    code, out, _ = run("capsule", "show", str(files["out"]), "--trust", str(files["root"]))
    assert code == 0
    assert "signer CN=RSA Signer" in out
