"""Enrolling the attestation key into a home: files, refusals, the CLI; FakeTpm and a dev swtpm."""

from __future__ import annotations

import json
import shutil
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding

from bios_ws.bootstrap import initialize
from bios_ws.cli import main
from bios_ws.domain.principal import Principal
from bios_ws.errors import AdminError, TpmError
from bios_ws.home import DEV_TPM, NO_TPM, Home, TpmChoice
from bios_ws.launch import enroll as enroll_module
from bios_ws.launch import measure as measure_module
from bios_ws.launch.enroll import (
    ak_certificate_matches,
    ak_record_path,
    ek_ca_dir,
    enroll,
    load_identity,
)
from bios_ws.launch.sealing import LaunchContext, unseal_key_passphrase
from bios_ws.pki import certs
from bios_ws.pki.akcert import ak_name_of
from bios_ws.pki.authority import Authority
from bios_ws.pki.files import ensure_dir
from bios_ws.server.identity import identity_of
from bios_ws.tpm.devtpm import DevTpm
from bios_ws.tpm.fake import FakeTpm
from bios_ws.tpm.port import AK_HANDLE
from tests.ports import closed_port


@pytest.fixture(scope="module")
def authority() -> Authority:
    return Authority(certs.make_ca(datetime.now(UTC)))


@pytest.fixture
def home(tmp_path: Path) -> Home:
    """A home on a (never opened) explicit TPM: its EK anchors come from attestation/ek-ca/."""
    home = Home.create(tmp_path / "home")
    home.record_tpm(TpmChoice("swtpm:host=127.0.0.1,port=9"))
    return home


@pytest.fixture
def fake() -> FakeTpm:
    return FakeTpm()


def trust(home: Home, pem: bytes, name: str = "vendor.pem") -> None:
    ensure_dir(ek_ca_dir(home))
    (ek_ca_dir(home) / name).write_bytes(pem)


def test_enroll_writes_the_attestation_files(home: Home, fake: FakeTpm,
                                             authority: Authority) -> None:
    trust(home, fake.ek_ca_pem)
    identity = enroll(home, fake, authority)
    for path in (home.ak_cert, home.ek_cert, ak_record_path(home)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
    ak_cert = x509.load_pem_x509_certificate(home.ak_cert.read_bytes())
    ak_cert.verify_directly_issued_by(authority.cert)
    assert identity.ak_cert_pem == home.ak_cert.read_bytes()
    assert ak_name_of(ak_cert) == identity.ak_name
    public = fake.attestation_key_public()
    assert public is not None and ak_cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo) == public
    record = json.loads(ak_record_path(home).read_text())
    assert record["name"] == identity.ak_name.hex()
    assert record["handle"] == f"{AK_HANDLE:#010x}" == "0x81000102"
    datetime.fromisoformat(record["created"])
    assert load_identity(home) == identity
    assert ak_certificate_matches(home, fake)


def test_enrolling_again_reuses_the_key_and_its_creation_time(
    home: Home, fake: FakeTpm, authority: Authority
) -> None:
    trust(home, fake.ek_ca_pem)
    first = enroll(home, fake, authority)
    created = json.loads(ak_record_path(home).read_text())["created"]
    second = enroll(home, fake, authority)
    assert second.ak_name == first.ak_name and second.ek_cert_pem == first.ek_cert_pem
    assert second.ak_cert_pem != first.ak_cert_pem  # re-issued
    assert json.loads(ak_record_path(home).read_text())["created"] == created


def test_without_a_vendor_ca_enrollment_is_refused_naming_the_directory(
    home: Home, fake: FakeTpm, authority: Authority
) -> None:
    with pytest.raises(AdminError, match=str(ek_ca_dir(home))):
        enroll(home, fake, authority)
    trust(home, b"not a certificate", "notes.txt")
    with pytest.raises(AdminError, match="no trusted EK CA certificate"):
        enroll(home, fake, authority)
    assert fake.attestation_key_public() is None and not home.ak_cert.exists()


def test_a_der_vendor_ca_is_accepted(home: Home, fake: FakeTpm, authority: Authority) -> None:
    der = x509.load_pem_x509_certificate(fake.ek_ca_pem).public_bytes(serialization.Encoding.DER)
    trust(home, der, "vendor.crt")
    assert enroll(home, fake, authority).ak_name


def test_an_untrusted_ek_is_refused_and_nothing_written(home: Home, fake: FakeTpm,
                                                        authority: Authority) -> None:
    trust(home, FakeTpm().ek_ca_pem)
    with pytest.raises(TpmError, match="does not chain"):
        enroll(home, fake, authority)
    assert not home.attestation_dir.joinpath("ak-cert.pem").exists()
    assert not home.ek_cert.exists()


def test_a_home_without_tpm_has_nothing_to_enroll(tmp_path: Path, fake: FakeTpm,
                                                  authority: Authority) -> None:
    home = Home.create(tmp_path / "plain")
    home.record_tpm(NO_TPM)
    with pytest.raises(AdminError, match="uses no TPM"):
        enroll(home, fake, authority)


def test_without_authority_the_tpm_is_closed_before_the_ca_is_unsealed(
    home: Home, fake: FakeTpm, authority: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    trust(home, fake.ek_ca_pem)
    loaded: list[bool] = []

    def load(loading_home: Home) -> Authority:
        assert loading_home == home
        loaded.append(fake.closed)
        return authority

    monkeypatch.setattr(enroll_module.Authority, "load", load)
    enroll(home, fake, None)
    assert loaded == [True]


def test_ak_certificate_matches_only_the_persisted_key(home: Home, fake: FakeTpm,
                                                       authority: Authority) -> None:
    assert not ak_certificate_matches(home, fake)  # no certificate
    trust(home, fake.ek_ca_pem)
    enroll(home, fake, authority)
    other = FakeTpm()
    assert not ak_certificate_matches(home, other)  # no AK there
    other.enroll_attestation_key([other.ek_ca_pem])
    assert not ak_certificate_matches(home, other)  # another AK
    fake.clear()
    assert not ak_certificate_matches(home, fake)
    home.ak_cert.write_bytes(b"damaged")
    assert not ak_certificate_matches(home, other)


def test_the_ak_certificate_maps_to_no_principal(home: Home, fake: FakeTpm,
                                                 authority: Authority, tmp_path: Path) -> None:
    trust(home, fake.ek_ca_pem)
    enroll(home, fake, authority)
    ak = x509.load_pem_x509_certificate(home.ak_cert.read_bytes())
    assert isinstance(identity_of(ak.public_bytes(Encoding.DER)), str)
    # the same path does map an ordinary guest certificate
    guest = authority.issue_domain("vm1", "0123456789abcdef").cert
    mapped = identity_of(guest.public_bytes(Encoding.DER))
    assert isinstance(mapped, Principal) and mapped.domain_id == "vm1"


def test_load_identity_refuses_missing_or_damaged_files(home: Home, fake: FakeTpm,
                                                        authority: Authority) -> None:
    with pytest.raises(AdminError, match="vbios ak enroll --home"):
        load_identity(home)
    trust(home, fake.ek_ca_pem)
    enroll(home, fake, authority)
    ak_record_path(home).write_text("{broken")
    with pytest.raises(AdminError, match="no attestation key enrolled"):
        load_identity(home)


def test_cli_show(home: Home, fake: FakeTpm, authority: Authority,
                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ak", "show", "--home", str(home.path)]) == 1
    assert "no attestation key enrolled" in capsys.readouterr().err
    trust(home, fake.ek_ca_pem)
    identity = enroll(home, fake, authority)
    assert main(["ak", "show", "--home", str(home.path), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["ak_name"] == identity.ak_name.hex()
    assert shown["ak_subject"].startswith("CN=vbios attestation key ")
    assert shown["ek_issuer"] == "CN=fake EK CA"
    assert main(["ak", "show", "--home", str(home.path)]) == 0
    assert identity.ak_name.hex() in capsys.readouterr().out


# -- a development home with a real swtpm --------------------------------------------------


@pytest.fixture(scope="module")
def dev_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Home, Path]]:
    if shutil.which("swtpm") is None:
        pytest.skip("swtpm is needed")
    base = tmp_path_factory.mktemp("enroll")
    package = base / "pkg" / "bios_ws"
    shutil.copytree(measure_module.installed_package_root(), package,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    done = initialize(base / "home", tpm=DEV_TPM, package_root=package)
    try:
        yield done.home, package
    finally:
        DevTpm(done.home.tpm_dir).stop()


def test_enroll_on_the_dev_tpm_is_idempotent(dev_home: tuple[Home, Path]) -> None:
    home, package = dev_home
    authority = Authority.load(home, unseal_key_passphrase(home, "ca", package_root=package))
    tpm = LaunchContext(home).open()
    try:
        first = enroll(home, tpm, authority)
        second = enroll(home, tpm, authority)
        assert second.ak_name == first.ak_name
        assert ak_certificate_matches(home, tpm)
    finally:
        tpm.close()
    ek = x509.load_pem_x509_certificate(second.ek_cert_pem)
    assert ek.issuer.rfc4514_string() == "CN=swtpm-localca"
    x509.load_pem_x509_certificate(second.ak_cert_pem).verify_directly_issued_by(authority.cert)


def test_cli_enroll_on_the_dev_tpm(dev_home: tuple[Home, Path], monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    home, package = dev_home
    monkeypatch.setattr(measure_module, "installed_package_root", lambda: package)
    assert main(["ak", "enroll", "--home", str(home.path)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"name {load_identity(home).ak_name.hex()}" in out and str(home.ak_cert) in out
    with closed_port() as port:
        closed = f"swtpm:host=127.0.0.1,port={port}"
        assert main(["ak", "enroll", "--home", str(home.path), "--tpm", closed]) == 1
    assert f"the TPM at {closed} is unreachable" in capsys.readouterr().err
