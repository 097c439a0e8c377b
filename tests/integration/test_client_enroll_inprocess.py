"""The guest library enrolls from a bootstrap URI against the real application in-process
(``tests.enroll_support``): the pin, the key made here, the bundle written whole, and
every refusal leaving nothing behind."""

from __future__ import annotations

import hashlib
import io
import json
import stat
from pathlib import Path

import pytest
import vbios_client as vc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from vbios_client import cli

from tests.enroll_support import (
    URL,
    InProcessServer,
    flipped,
    server,
    uri_fields,
    with_fields,
)

__all__ = ["server"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_enrollment_writes_a_bundle_of_its_own_key_that_works(
        server: InProcessServer, tmp_path: Path) -> None:
    out = tmp_path / "guest" / "bundle"
    issued = vc.enroll(server.bootstrap_uri("vm1"), out)
    assert (issued.domain, issued.path) == ("vm1", out)
    assert sorted(p.name for p in out.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
    assert (mode(out), mode(out / "key.pem")) == (0o700, 0o600)
    assert mode(out / "cert.pem") == mode(out / "ca.pem") == 0o644
    assert (out / "ca.pem").read_bytes() == server.ca_pem
    cert = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    key = serialization.load_pem_private_key((out / "key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
    assert cert.public_key() == key.public_key()
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(server.ca_pem))
    assert issued.serial == f"{cert.serial_number:X}"
    assert issued.not_after == cert.not_valid_after_utc
    # first contact without a certificate: the CA, then Enroll; nothing else
    assert server.actions() == ["GET /ca.pem", "Enroll"]
    assert [s.serial for s in server.seen] == [None, None]
    assert leftovers(out.parent) == []

    with vc.BiosClient.from_bundle(URL, out) as bios:
        assert bios.get_attributes(["BootTimeout"]).values == {"BootTimeout": 5}
        state = bios.get_provisioning_state()
    assert state.state == "S3" and "renew" in state.next_step
    assert state.certificate_not_after == cert.not_valid_after_utc
    assert server.seen[-1].serial == cert.serial_number


def test_the_key_never_leaves_the_guest(server: InProcessServer, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    bodies: list[bytes] = []
    send = server.send

    def spy(request: object, **kwargs: object) -> object:
        bodies.append(getattr(request, "body", b"") or b"")
        return send(request, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(server, "send", spy)
    out = tmp_path / "bundle"
    vc.enroll(server.bootstrap_uri("vm1"), out)
    key = serialization.load_pem_private_key((out / "key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    secret = key.private_numbers().private_value.to_bytes(32, "big")
    sent = b"".join(bodies)
    assert b"Enroll" in sent and b"PRIVATE KEY" not in sent
    assert secret not in sent and secret.hex().encode() not in sent


def test_a_wrong_pin_sends_nothing_and_the_uri_stays_usable(
        server: InProcessServer, tmp_path: Path) -> None:
    uri = server.bootstrap_uri("vm1")
    pin = hashlib.sha256(b"another CA").hexdigest()
    wrong = with_fields(uri, ca=f"sha256:{pin}")
    with pytest.raises(vc.CaPinMismatch, match=f"pins {pin}: nothing was sent"):
        vc.enroll(wrong, tmp_path / "bundle")
    assert server.actions() == ["GET /ca.pem"]
    assert not (tmp_path / "bundle").exists() and leftovers(tmp_path) == []
    assert vc.enroll(uri, tmp_path / "bundle").domain == "vm1"


def test_a_bundle_directory_in_the_way_is_refused_before_any_contact(
        server: InProcessServer, tmp_path: Path) -> None:
    uri = server.bootstrap_uri("vm1")
    used = tmp_path / "used"
    used.mkdir()
    (used / "cert.pem").write_bytes(b"keep me")
    with pytest.raises(vc.BundleError, match="not empty"):
        vc.enroll(uri, used)
    (tmp_path / "file").write_text("x")
    with pytest.raises(vc.BundleError, match="not a directory"):
        vc.enroll(uri, tmp_path / "file")
    (tmp_path / "link").symlink_to(tmp_path / "empty-target")
    with pytest.raises(vc.BundleError, match="symbolic link"):
        vc.enroll(uri, tmp_path / "link")
    assert server.seen == [] and (used / "cert.pem").read_bytes() == b"keep me"
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o755)
    vc.enroll(uri, empty)
    assert mode(empty) == 0o700 and (empty / "key.pem").is_file()


def test_a_refused_enrollment_writes_nothing(server: InProcessServer, tmp_path: Path) -> None:
    uri = server.bootstrap_uri("vm1")
    vc.enroll(uri, tmp_path / "first")
    with pytest.raises(vc.AccessDenied, match="already used"):
        vc.enroll(uri, tmp_path / "second")
    other = server.bootstrap_uri("vm1")
    tampered = with_fields(other, token=flipped(uri_fields(other)["token"]))
    with pytest.raises(vc.AccessDenied, match="not valid for this domain"):
        vc.enroll(tampered, tmp_path / "third")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first", "home"]


def test_a_malformed_uri_is_refused_before_any_contact(server: InProcessServer,
                                                        tmp_path: Path) -> None:
    with pytest.raises(vc.InvalidBootstrapUri, match="lacks token"):
        vc.enroll(server.bootstrap_uri("vm1").replace("token=", "tokn="), tmp_path / "b")
    assert server.seen == [] and not (tmp_path / "b").exists()


def test_the_cli_enrolls_renews_and_shows_the_state(server: InProcessServer,
                                                   tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    bundle = tmp_path / "bundle"
    assert cli.main(["enroll", server.bootstrap_uri("vm1"), "--out", str(bundle), "--json"],
                    stdout=out, stderr=err) == 0, err.getvalue()
    enrolled = json.loads(out.getvalue())
    assert enrolled["domain"] == "vm1" and enrolled["bundle"] == str(bundle)
    first = x509.load_pem_x509_certificate((bundle / "cert.pem").read_bytes())
    assert enrolled["serial"] == f"{first.serial_number:X}"

    out = io.StringIO()
    assert cli.main(["--url", URL, "--bundle", str(bundle), "cert", "renew"],
                    stdout=out, stderr=err) == 0, err.getvalue()
    second = x509.load_pem_x509_certificate((bundle / "cert.pem").read_bytes())
    assert second.serial_number != first.serial_number
    assert f"serial    = {second.serial_number:X}\n" in out.getvalue()
    assert server.actions()[-2:] == ["RenewCertificate", "GetProvisioningState"]

    out = io.StringIO()
    assert cli.main(["--url", URL, "--bundle", str(bundle), "provisioning", "--json"],
                    stdout=out, stderr=err) == 0, err.getvalue()
    assert json.loads(out.getvalue())["state"] == "S3"
    assert err.getvalue() == ""

