"""Encrypted capsule delivery, the guest's side (vbios_client._transfer): the one-time
sender encrypts as the specification (tests/transfer_spec.py) says, checks the vBIOS's
points, and is used once. Pure: no I/O."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from vbios_client._transfer import InvalidServerKey, OneTimeKeyUsed, OneTimeSender

from bios_ws.firmware.transfer import TransferKey
from tests.transfer_spec import (
    CAPSULE,
    UPLOAD,
    ecdh,
    new_key,
    not_reduced_point,
    point,
    spec_key_and_nonce,
    valid_point,
)


@pytest.fixture
def server() -> TransferKey:
    return TransferKey.generate()


def test_the_guest_encrypts_as_the_specification_says() -> None:
    static, one_time = new_key(), new_key()
    s_pub, e_pub = point(static), point(one_time)
    sender = OneTimeSender()
    c_pub = sender.client_public()
    ciphertext = sender.encrypt(UPLOAD, s_pub, e_pub, CAPSULE)
    key, nonce = spec_key_and_nonce(ecdh(static, c_pub), ecdh(one_time, c_pub), UPLOAD,
                                    s_pub, c_pub, e_pub)
    assert AESGCM(key).decrypt(nonce, ciphertext, UPLOAD.encode("ascii")) == CAPSULE


def test_the_one_time_sender_refuses_a_second_use(server: TransferKey) -> None:
    sender = OneTimeSender()
    accepted = server.accept(UPLOAD, sender.client_public())
    assert not sender.used
    sender.encrypt(UPLOAD, server.public_point(), accepted.server_one_time_public, CAPSULE)
    assert sender.used
    with pytest.raises(OneTimeKeyUsed, match="used already"):
        sender.encrypt(UPLOAD, server.public_point(), accepted.server_one_time_public, CAPSULE)


def test_a_refused_answer_uses_the_key_up_too() -> None:
    sender = OneTimeSender()
    with pytest.raises(InvalidServerKey):
        sender.encrypt(UPLOAD, b"\x04" + bytes(64), valid_point(), CAPSULE)
    with pytest.raises(OneTimeKeyUsed):
        sender.encrypt(UPLOAD, valid_point(), valid_point(), CAPSULE)


def test_senders_have_their_own_keys() -> None:
    assert OneTimeSender().client_public() != OneTimeSender().client_public()
    assert len(OneTimeSender().client_public()) == 65


@pytest.mark.parametrize(("static", "one_time", "message"), [
    (b"\x04" + bytes(64), None, "transfer key is the point at infinity"),
    (None, b"\x00", "one-time key is not an uncompressed P-256 point"),
    (None, b"\x02" + bytes(32), "one-time key is not an uncompressed P-256 point"),
    (b"\x04" + (1).to_bytes(32, "big") * 2, None, "transfer key is not a point on the P-256"),
    (None, not_reduced_point(), "one-time key is not a point on the P-256"),
], ids=["static at infinity", "identity", "compressed", "off the curve", "X + p"])
def test_the_guest_refuses_invalid_server_points(static: bytes | None, one_time: bytes | None,
                                                 message: str) -> None:
    with pytest.raises(InvalidServerKey, match=message):
        OneTimeSender().encrypt(UPLOAD, static or valid_point(), one_time or valid_point(),
                                CAPSULE)


def test_the_guest_refuses_one_key_twice_or_its_own_key() -> None:
    same = valid_point()
    with pytest.raises(InvalidServerKey, match="one-time key is its static"):
        OneTimeSender().encrypt(UPLOAD, same, same, CAPSULE)
    sender = OneTimeSender()
    with pytest.raises(InvalidServerKey, match="this client's own key"):
        sender.encrypt(UPLOAD, same, sender.client_public(), CAPSULE)


def test_the_client_module_does_not_import_the_server() -> None:
    import vbios_client._transfer as client_transfer

    for name, value in vars(client_transfer).items():
        origin = getattr(value, "__module__", None) or getattr(value, "__name__", "")
        assert not str(origin).startswith("bios_ws"), name
