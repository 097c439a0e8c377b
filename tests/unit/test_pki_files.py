"""PKI on disk: modes from the first byte, encrypted keys, bundles, clear-key scan."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from cryptography.x509.verification import PolicyBuilder, Store

from bios_ws.bootstrap import initialize_home
from bios_ws.errors import AdminError, KeyUnreadable
from bios_ws.home import Home
from bios_ws.pki import (
    Authority,
    find_clear_private_keys,
    initialize_pki,
)
from bios_ws.pki.files import write_file_atomic
from tests.credentials_support import issue_bundle


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return initialize_home(tmp_path / "home")


def test_key_files_and_passphrase_are_0600_in_0700_dirs(home: Home) -> None:
    for path in (home.ca_key, home.server_key, home.transfer_key, home.passphrase_file,
                 home.admin_dir / "key.pem"):
        assert _mode(path) == 0o600, path
    for path in (home.path, home.secrets_dir, home.pki_dir, home.admin_dir):
        assert _mode(path) == 0o700, path
    for path in (home.ca_cert, home.server_cert, home.admin_dir / "cert.pem"):
        assert _mode(path) == 0o644, path


def test_modes_hold_even_under_a_permissive_umask(tmp_path: Path, permissive_umask: None) -> None:
    home = Home.create(tmp_path / "home")
    initialize_pki(home)
    assert _mode(home.ca_key) == 0o600
    assert _mode(home.transfer_key) == 0o600
    assert _mode(home.passphrase_file) == 0o600
    assert _mode(home.secrets_dir) == 0o700


def test_private_files_are_created_0600_from_the_first_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: dict[str, int] = {}
    real_open = os.open

    def recording_open(path: str | os.PathLike[str], flags: int, mode: int = 0o777,
                       **kw: object) -> int:
        if flags & os.O_CREAT:
            assert flags & os.O_EXCL, "temporary files must be fresh"
            opened[Path(path).name] = mode
        return real_open(path, flags, mode)

    home = Home.create(tmp_path / "home")
    monkeypatch.setattr(os, "open", recording_open)
    initialize_pki(home)
    modes = {name.split(".")[1]: mode for name, mode in opened.items()}
    assert modes["ca-key"] == 0o600
    assert modes["server-key"] == 0o600
    assert modes["transfer-key"] == 0o600
    assert modes["key-passphrase"] == 0o600
    assert modes["key"] == 0o600  # the admin bundle's key.pem
    assert modes["ca"] == 0o644
    assert not list(home.path.rglob("*.tmp"))


def test_ca_server_and_transfer_keys_are_encrypted_with_the_stored_passphrase(
        home: Home) -> None:
    passphrase = home.key_passphrase()
    assert len(passphrase) == 44  # 32 random bytes, urlsafe base64
    for path in (home.ca_key, home.server_key, home.transfer_key):
        pem = path.read_bytes()
        assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        with pytest.raises(TypeError):
            load_pem_private_key(pem, password=None)
        with pytest.raises(ValueError):
            load_pem_private_key(pem, password=b"not-the-passphrase")
        assert isinstance(load_pem_private_key(pem, password=passphrase),
                          ec.EllipticCurvePrivateKey)


def test_passphrases_differ_between_installations(tmp_path: Path) -> None:
    first, second = Home.create(tmp_path / "a"), Home.create(tmp_path / "b")
    initialize_pki(first)
    initialize_pki(second)
    assert first.key_passphrase() != second.key_passphrase()


def test_no_clear_private_key_outside_handed_out_bundles(home: Home) -> None:
    issue_bundle(home, "web1", home.bundles_dir / "web1")
    assert find_clear_private_keys(home) == []
    handed_out = find_clear_private_keys(home, include_handed_out=True)
    assert sorted(handed_out) == sorted([home.admin_dir / "key.pem",
                                         home.bundles_dir / "web1" / "key.pem"])


def test_clear_key_scan_finds_a_planted_key(home: Home) -> None:
    planted = home.pki_dir / "oops.pem"
    planted.write_bytes((home.admin_dir / "key.pem").read_bytes())
    traditional = home.path / "legacy.pem"
    traditional.write_bytes(
        b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n")
    encrypted = home.path / "legacy-enc.pem"
    encrypted.write_bytes(b"-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n"
                          b"DEK-Info: AES-256-CBC,00\n\nAAAA\n-----END EC PRIVATE KEY-----\n")
    assert sorted(find_clear_private_keys(home)) == sorted([planted, traditional])


def test_initialize_pki_refuses_an_initialized_home(home: Home) -> None:
    before = home.ca_key.read_bytes()
    with pytest.raises(AdminError, match="already initialized"):
        initialize_pki(home)
    assert home.ca_key.read_bytes() == before


def test_authority_loads_and_chains(home: Home) -> None:
    authority = Authority.load(home)
    ca = x509.load_pem_x509_certificate(home.ca_cert.read_bytes())
    assert authority.cert == ca
    server = x509.load_pem_x509_certificate(home.server_cert.read_bytes())
    server.verify_directly_issued_by(ca)
    admin = x509.load_pem_x509_certificate((home.admin_dir / "cert.pem").read_bytes())
    PolicyBuilder().store(Store([ca])).build_client_verifier().verify(admin, [])


def test_missing_passphrase_is_key_unreadable(home: Home) -> None:
    home.passphrase_file.unlink()
    with pytest.raises(KeyUnreadable, match="key passphrase"):
        Authority.load(home)


def test_wrong_passphrase_is_key_unreadable(home: Home) -> None:
    home.passphrase_file.unlink()
    write_file_atomic(home.passphrase_file, b"d3JvbmctcGFzc3BocmFzZQ==\n", 0o600)
    with pytest.raises(KeyUnreadable, match="wrong passphrase or damaged"):
        Authority.load(home)


@pytest.mark.parametrize("content", [b"", b"\n\n", b"x" * 2000])
def test_empty_or_oversized_passphrase_is_key_unreadable(home: Home, content: bytes) -> None:
    home.passphrase_file.unlink()
    write_file_atomic(home.passphrase_file, content, 0o600)
    with pytest.raises(KeyUnreadable, match="empty or damaged"):
        home.key_passphrase()


def test_passphrase_readable_by_others_is_refused(home: Home) -> None:
    home.passphrase_file.chmod(0o644)
    with pytest.raises(KeyUnreadable, match="mode 0644"):
        home.key_passphrase()


def test_damaged_ca_key_or_certificate_is_key_unreadable(home: Home) -> None:
    home.ca_key.write_bytes(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n")
    with pytest.raises(KeyUnreadable, match=str(home.ca_key)):
        Authority.load(home)
    home.ca_cert.write_bytes(b"not a certificate")
    with pytest.raises(KeyUnreadable, match="damaged"):
        Authority.load(home)


def test_ca_key_that_does_not_match_the_certificate_is_refused(home: Home) -> None:
    home.ca_key.unlink()
    home.ca_key.write_bytes(home.server_key.read_bytes())
    with pytest.raises(KeyUnreadable, match="does not match"):
        Authority.load(home)


def test_domain_bundle_contents_and_modes(home: Home) -> None:
    out = home.bundles_dir / "web1"
    issue_bundle(home, "web1", out)
    assert sorted(p.name for p in out.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
    assert _mode(out) == 0o700
    assert _mode(home.bundles_dir) == 0o700
    assert _mode(out / "key.pem") == 0o600
    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    assert ca == x509.load_pem_x509_certificate(home.ca_cert.read_bytes())
    cert = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uris = san.get_values_for_type(x509.UniformResourceIdentifier)
    assert uris[0] == "urn:vbios:domain:web1"
    assert uris[1].startswith("urn:vbios:incarnation:")
    PolicyBuilder().store(Store([ca])).build_client_verifier().verify(cert, [])
    key = load_pem_private_key((out / "key.pem").read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key() == cert.public_key()


def test_domain_bundle_refuses_a_used_directory(home: Home, tmp_path: Path) -> None:
    out = tmp_path / "used"
    out.mkdir()
    (out / "key.pem").write_bytes(b"precious")
    with pytest.raises(AdminError, match="not empty"):
        issue_bundle(home, "web1", out)
    assert (out / "key.pem").read_bytes() == b"precious"
    assert sorted(p.name for p in out.iterdir()) == ["key.pem"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(AdminError, match="not a directory"):
        issue_bundle(home, "web1", a_file)


def test_domain_bundle_needs_a_readable_ca_key(home: Home, tmp_path: Path) -> None:
    home.passphrase_file.unlink()
    with pytest.raises(KeyUnreadable):
        issue_bundle(home, "web1", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "f.pem"
    write_file_atomic(target, b"one", 0o600)
    write_file_atomic(target, b"two", 0o644)
    assert target.read_bytes() == b"two"
    assert _mode(target) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["f.pem"]


def test_atomic_write_failure_is_an_admin_error(tmp_path: Path) -> None:
    with pytest.raises(AdminError, match="cannot write"):
        write_file_atomic(tmp_path / "missing" / "f.pem", b"x", 0o600)
    assert list(tmp_path.iterdir()) == []
