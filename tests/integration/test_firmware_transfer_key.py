"""The transfer key file of encrypted capsule delivery (pki/transfer-key.pem): made by
`vbios init` and by ``ensure_transfer_key`` for older homes, 0600, encrypted under the
server key's passphrase; run on tmp_path homes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from vbios_client._transfer import OneTimeSender

from bios_ws.bootstrap import initialize_home
from bios_ws.errors import AdminError, KeyUnreadable, UnsafePermissions
from bios_ws.firmware.transfer import (
    TransferKey,
    create_transfer_key,
    ensure_transfer_key,
    load_transfer_key,
)
from bios_ws.home import Home
from bios_ws.launch.permissions import check_home_permissions
from bios_ws.pki import find_clear_private_keys
from bios_ws.pki.certs import encrypted_key_pem

PASSPHRASE = b"correct horse battery staple"
UPLOAD = "0123456789abcdef0123456789abcdef"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _round_trip(sender_side: TransferKey, receiver: TransferKey) -> bytes:
    sender = OneTimeSender()
    accepted = sender_side.accept(UPLOAD, sender.client_public())
    ciphertext = sender.encrypt(UPLOAD, sender_side.public_point(),
                                accepted.server_one_time_public, b"capsule")
    return receiver.decrypt(UPLOAD, accepted.wrapped_key, ciphertext)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return initialize_home(tmp_path / "home")


def test_the_key_file_is_0600_and_encrypted(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        create_transfer_key(tmp_path / "transfer-key.pem", PASSPHRASE)
    finally:
        os.umask(old)
    path = tmp_path / "transfer-key.pem"
    assert _mode(path) == 0o600
    pem = path.read_bytes()
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert b"-----BEGIN PRIVATE KEY-----" not in pem
    assert b"EC PRIVATE KEY-----" not in pem
    with pytest.raises(TypeError):
        load_pem_private_key(pem, password=None)
    key = load_pem_private_key(pem, password=PASSPHRASE)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["transfer-key.pem"]  # no leftovers


def test_the_loaded_key_is_the_created_key(tmp_path: Path) -> None:
    path = tmp_path / "transfer-key.pem"
    created = create_transfer_key(path, PASSPHRASE)
    loaded = load_transfer_key(path, PASSPHRASE)
    assert loaded.public_point() == created.public_point()
    # what one accepted, the other decrypts: the same key, and the same wrap key
    assert _round_trip(created, loaded) == b"capsule"


def test_a_wrong_passphrase_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "transfer-key.pem"
    create_transfer_key(path, PASSPHRASE)
    with pytest.raises(KeyUnreadable, match=f"cannot decrypt key {path}: wrong passphrase"):
        load_transfer_key(path, b"not the passphrase")


def test_a_missing_or_damaged_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "transfer-key.pem"
    with pytest.raises(KeyUnreadable, match=f"cannot read key {path}"):
        load_transfer_key(path, PASSPHRASE)
    path.write_bytes(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n")
    with pytest.raises(KeyUnreadable, match="wrong passphrase or damaged file"):
        load_transfer_key(path, PASSPHRASE)


def test_only_a_p256_key_file_is_a_transfer_key(tmp_path: Path) -> None:
    path = tmp_path / "transfer-key.pem"
    path.write_bytes(encrypted_key_pem(ec.generate_private_key(ec.SECP384R1()), PASSPHRASE))
    with pytest.raises(KeyUnreadable, match="is not a P-256 key"):
        load_transfer_key(path, PASSPHRASE)


def test_an_existing_key_is_never_replaced_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "transfer-key.pem"
    create_transfer_key(path, PASSPHRASE)
    before = path.read_bytes()
    with pytest.raises(AdminError, match="exists already"):
        create_transfer_key(path, PASSPHRASE)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["transfer-key.pem"]
    replaced = create_transfer_key(path, b"another passphrase", replace=True)
    assert path.read_bytes() != before
    assert _mode(path) == 0o600
    assert load_transfer_key(path, b"another passphrase").public_point() == \
        replaced.public_point()


def test_init_makes_the_transfer_key_under_the_server_passphrase(home: Home) -> None:
    assert home.transfer_key == home.pki_dir / "transfer-key.pem"
    assert _mode(home.transfer_key) == 0o600
    key = load_transfer_key(home.transfer_key, home.key_passphrase("server"))
    assert ensure_transfer_key(home, home.key_passphrase("server")).public_point() == \
        key.public_point()
    assert find_clear_private_keys(home) == []


def test_ensure_makes_the_key_of_an_older_home_then_loads_it(home: Home) -> None:
    home.transfer_key.unlink()  # a home made before encrypted delivery
    passphrase = home.key_passphrase("server")
    made = ensure_transfer_key(home, passphrase)
    assert _mode(home.transfer_key) == 0o600
    again = ensure_transfer_key(home, passphrase)
    assert again.public_point() == made.public_point()
    assert _round_trip(made, again) == b"capsule"
    check_home_permissions(home)


def test_ensure_refuses_a_wrong_passphrase_without_replacing_the_key(home: Home) -> None:
    before = home.transfer_key.read_bytes()
    with pytest.raises(KeyUnreadable, match="wrong passphrase"):
        ensure_transfer_key(home, b"not the passphrase")
    assert home.transfer_key.read_bytes() == before


def test_ensure_uses_the_key_another_process_made_first(
        home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    home.transfer_key.unlink()
    passphrase = home.key_passphrase("server")
    theirs = create_transfer_key(home.pki_dir / "theirs.pem", passphrase)
    real_link = os.link

    def racing_link(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        real_link(home.pki_dir / "theirs.pem", dst)  # they won the race
        real_link(src, dst)  # FileExistsError, as a loser sees it

    monkeypatch.setattr(os, "link", racing_link)
    assert ensure_transfer_key(home, passphrase).public_point() == theirs.public_point()


def test_a_transfer_key_others_may_read_is_refused(home: Home) -> None:
    home.transfer_key.chmod(0o640)
    with pytest.raises(UnsafePermissions, match=f"chmod 600 {home.transfer_key}$"):
        check_home_permissions(home)
