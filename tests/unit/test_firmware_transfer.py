"""Encrypted capsule delivery, the vBIOS's side (bios_ws.firmware.transfer): TransferKey
with the guest's OneTimeSender, and against the specification written out in
tests/transfer_spec.py. Pure: no I/O."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from vbios_client._transfer import OneTimeSender

from bios_ws.firmware.transfer import (
    Accepted,
    InvalidTransferPoint,
    TransferDecryptionFailed,
    TransferKey,
    parse_point,
)
from tests.transfer_spec import (
    CAPSULE,
    OTHER_UPLOAD,
    UPLOAD,
    ecdh,
    hkdf_sha256,
    new_key,
    not_reduced_point,
    point,
    spec_key_and_nonce,
    spec_wrap_key,
    valid_point,
)


@pytest.fixture
def static() -> ec.EllipticCurvePrivateKey:
    return new_key()


@pytest.fixture
def server(static: ec.EllipticCurvePrivateKey) -> TransferKey:
    return TransferKey(static)


def _upload(server: TransferKey, capsule: bytes = CAPSULE,
            upload_id: str = UPLOAD) -> tuple[Accepted, bytes]:
    sender = OneTimeSender()
    accepted = server.accept(upload_id, sender.client_public())
    return accepted, sender.encrypt(upload_id, server.public_point(),
                                    accepted.server_one_time_public, capsule)


# -- the round trip -------------------------------------------------------------------------


def test_a_capsule_goes_from_the_guest_to_the_vbios(server: TransferKey) -> None:
    accepted, ciphertext = _upload(server)
    assert len(ciphertext) == len(CAPSULE) + 16
    assert CAPSULE[:64] not in ciphertext
    assert server.decrypt(UPLOAD, accepted.wrapped_key, ciphertext) == CAPSULE


def test_each_upload_has_its_own_one_time_key_and_wrapping(server: TransferKey) -> None:
    sender = OneTimeSender()
    first = server.accept(UPLOAD, sender.client_public())
    second = server.accept(UPLOAD, sender.client_public())
    assert first.server_one_time_public != second.server_one_time_public
    assert first.wrapped_key[:12] != second.wrapped_key[:12]  # each its own wrap nonce
    assert len(first.wrapped_key) == 12 + 44 + 16
    assert first.client_key_fingerprint == second.client_key_fingerprint == \
        hashlib.sha256(sender.client_public()).hexdigest()
    assert first.client_key_fingerprint != server.accept(
        UPLOAD, OneTimeSender().client_public()).client_key_fingerprint


def test_the_public_points_are_uncompressed(server: TransferKey,
                                            static: ec.EllipticCurvePrivateKey) -> None:
    assert server.public_point() == point(static)
    assert len(server.public_point()) == 65 and server.public_point()[0] == 4
    accepted = server.accept(UPLOAD, OneTimeSender().client_public())
    assert len(accepted.server_one_time_public) == 65
    assert accepted.server_one_time_public[0] == 4


def test_the_transfer_key_keeps_only_its_static_key(server: TransferKey) -> None:
    assert not hasattr(server, "__dict__")  # slots: no room for a one-time key
    server.accept(UPLOAD, OneTimeSender().client_public())
    privates = [getattr(server, slot) for slot in TransferKey.__slots__
                if isinstance(getattr(server, slot), ec.EllipticCurvePrivateKey)]
    assert len(privates) == 1


def test_an_empty_capsule_round_trips(server: TransferKey) -> None:
    accepted, ciphertext = _upload(server, b"")
    assert server.decrypt(UPLOAD, accepted.wrapped_key, ciphertext) == b""


def test_only_a_p256_key_is_a_transfer_key() -> None:
    with pytest.raises(ValueError, match="P-256"):
        TransferKey(ec.generate_private_key(ec.SECP384R1()))


# -- the derivation, against the specification ----------------------------------------------


def test_the_server_derives_the_key_of_the_specification(
        server: TransferKey, static: ec.EllipticCurvePrivateKey) -> None:
    client = new_key()
    c_pub, s_pub = point(client), point(static)
    accepted = server.accept(UPLOAD, c_pub)
    e_pub = accepted.server_one_time_public
    key, nonce = spec_key_and_nonce(ecdh(client, s_pub), ecdh(client, e_pub), UPLOAD,
                                    s_pub, c_pub, e_pub)
    ciphertext = AESGCM(key).encrypt(nonce, CAPSULE, UPLOAD.encode("ascii"))
    assert server.decrypt(UPLOAD, accepted.wrapped_key, ciphertext) == CAPSULE


def test_the_wrapped_key_is_the_content_key_under_the_wrap_key_of_the_specification(
        server: TransferKey, static: ec.EllipticCurvePrivateKey) -> None:
    client = new_key()
    c_pub, s_pub = point(client), point(static)
    accepted = server.accept(UPLOAD, c_pub)
    e_pub = accepted.server_one_time_public
    blob = accepted.wrapped_key
    opened = AESGCM(spec_wrap_key(static)).decrypt(blob[:12], blob[12:], UPLOAD.encode("ascii"))
    assert opened == b"".join(spec_key_and_nonce(
        ecdh(client, s_pub), ecdh(client, e_pub), UPLOAD, s_pub, c_pub, e_pub))


def test_the_hand_written_hkdf_is_rfc_5869() -> None:
    # RFC 5869, test cases 1 and 3 (no salt: the wrap key's case)
    okm = hkdf_sha256(bytes.fromhex("0b" * 22), bytes.fromhex("000102030405060708090a0b0c"),
                      bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")
    okm = hkdf_sha256(bytes.fromhex("0b" * 22), b"", b"", 42)
    assert okm.hex() == ("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
                         "9d201395faa4b61a96c8")


# -- what does not open ---------------------------------------------------------------------


def test_one_flipped_bit_anywhere_is_refused(server: TransferKey) -> None:
    capsule = b"a small capsule of forty bytes.........."
    accepted, ciphertext = _upload(server, capsule)
    for index in range(len(ciphertext)):
        for bit in range(8):
            spoiled = bytearray(ciphertext)
            spoiled[index] ^= 1 << bit
            with pytest.raises(TransferDecryptionFailed, match="authentication tag"):
                server.decrypt(UPLOAD, accepted.wrapped_key, bytes(spoiled))
    assert server.decrypt(UPLOAD, accepted.wrapped_key, ciphertext) == capsule


@pytest.mark.parametrize("spoil", [
    lambda c: c[:-1], lambda c: c[1:], lambda c: c[:len(c) // 2], lambda c: c[:16],
    lambda c: c[:-16], lambda c: c + b"\x00", lambda c: c + c[-16:], lambda c: b"\x00" + c,
], ids=["last byte cut", "first byte cut", "half", "tag only", "tag cut", "one more byte",
        "tag repeated", "a byte before"])
def test_a_truncated_or_extended_ciphertext_is_refused(
        server: TransferKey, spoil: Callable[[bytes], bytes]) -> None:
    accepted, ciphertext = _upload(server)
    with pytest.raises(TransferDecryptionFailed, match="authentication tag"):
        server.decrypt(UPLOAD, accepted.wrapped_key, spoil(ciphertext))


def test_a_ciphertext_shorter_than_the_tag_is_refused(server: TransferKey) -> None:
    accepted, ciphertext = _upload(server)
    for short in (b"", ciphertext[:15]):
        with pytest.raises(TransferDecryptionFailed, match="fewer than its 16-byte"):
            server.decrypt(UPLOAD, accepted.wrapped_key, short)


def test_another_upload_id_is_refused(server: TransferKey) -> None:
    accepted, ciphertext = _upload(server)
    with pytest.raises(TransferDecryptionFailed, match="another upload"):
        server.decrypt(OTHER_UPLOAD, accepted.wrapped_key, ciphertext)


def test_a_capsule_encrypted_for_another_upload_id_is_refused(server: TransferKey) -> None:
    sender = OneTimeSender()
    accepted = server.accept(UPLOAD, sender.client_public())
    ciphertext = sender.encrypt(OTHER_UPLOAD, server.public_point(),
                                accepted.server_one_time_public, CAPSULE)
    with pytest.raises(TransferDecryptionFailed, match="authentication tag"):
        server.decrypt(UPLOAD, accepted.wrapped_key, ciphertext)


def test_a_wrapped_key_of_another_transfer_key_is_refused(server: TransferKey) -> None:
    other = TransferKey.generate()
    sender = OneTimeSender()
    accepted = other.accept(UPLOAD, sender.client_public())
    ciphertext = sender.encrypt(UPLOAD, other.public_point(),
                                accepted.server_one_time_public, CAPSULE)
    assert other.decrypt(UPLOAD, accepted.wrapped_key, ciphertext) == CAPSULE
    with pytest.raises(TransferDecryptionFailed, match="another transfer key"):
        server.decrypt(UPLOAD, accepted.wrapped_key, ciphertext)


def test_a_wrapped_key_of_another_upload_is_refused(server: TransferKey) -> None:
    mine, ciphertext = _upload(server)
    theirs, _ = _upload(server)
    with pytest.raises(TransferDecryptionFailed, match="authentication tag"):
        server.decrypt(UPLOAD, theirs.wrapped_key, ciphertext)
    assert server.decrypt(UPLOAD, mine.wrapped_key, ciphertext) == CAPSULE


def test_a_damaged_wrapped_key_is_refused(server: TransferKey) -> None:
    accepted, ciphertext = _upload(server)
    wrapped = accepted.wrapped_key
    for index in (0, 11, 12, 40, len(wrapped) - 1):
        spoiled = bytearray(wrapped)
        spoiled[index] ^= 0x80
        with pytest.raises(TransferDecryptionFailed, match="wrapped content key does not open"):
            server.decrypt(UPLOAD, bytes(spoiled), ciphertext)
    for wrong_length in (b"", wrapped[:-1], wrapped + b"\x00"):
        with pytest.raises(TransferDecryptionFailed, match="not 72"):
            server.decrypt(UPLOAD, wrong_length, ciphertext)


def test_the_failure_is_one_value_error_class() -> None:
    assert issubclass(TransferDecryptionFailed, ValueError)
    assert issubclass(InvalidTransferPoint, ValueError)


def test_an_upload_id_is_ascii(server: TransferKey) -> None:
    with pytest.raises(ValueError, match="ASCII"):
        server.accept("\u00e9" * 32, OneTimeSender().client_public())
    with pytest.raises(ValueError, match="ASCII"):
        server.accept("", OneTimeSender().client_public())


# -- refused client points ------------------------------------------------------------------


SOME_POINT = valid_point()


@pytest.mark.parametrize(("encoded", "message"), [
    (b"", "is empty"),
    (b"\x00", "point at infinity"),
    (b"\x04" + bytes(64), "all-zero coordinates"),
    (SOME_POINT[:64], "has 64 bytes"),
    (SOME_POINT + b"\x00", "has 66 bytes"),
    (b"\x04" + SOME_POINT[1:33], "has 33 bytes"),
    (b"\x03" + SOME_POINT[1:33], "compressed point"),
    (b"\x06" + SOME_POINT[1:], "starts with 0x06"),
    (b"\x05" + SOME_POINT[1:], "starts with 0x05"),
    (SOME_POINT[:64] + bytes([SOME_POINT[64] ^ 1]), "not a point on the P-256 curve"),
    (b"\x04" + (1).to_bytes(32, "big") + (2).to_bytes(32, "big"), "not a point on the P-256"),
    (not_reduced_point(), "not a point on the P-256 curve"),
    (point(ec.generate_private_key(ec.SECP384R1()))[:65], "not a point on the P-256 curve"),
], ids=["empty", "identity", "zero coordinates", "short", "long", "X only",
        "compressed", "hybrid", "unknown form", "Y off by one", "(1, 2)", "X + p",
        "P-384 bytes"])
def test_an_invalid_client_point_is_refused(server: TransferKey, encoded: bytes,
                                            message: str) -> None:
    with pytest.raises(InvalidTransferPoint, match=message) as refused:
        server.accept(UPLOAD, encoded)
    assert str(refused.value).startswith("the client key ")


def test_the_client_point_may_not_be_the_vbios_key(server: TransferKey) -> None:
    with pytest.raises(InvalidTransferPoint, match="the vBIOS's own transfer key"):
        server.accept(UPLOAD, server.public_point())


def test_a_compressed_form_of_a_valid_key_is_refused(server: TransferKey) -> None:
    compressed = new_key().public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    with pytest.raises(InvalidTransferPoint, match="send the uncompressed form"):
        server.accept(UPLOAD, compressed)


def test_parse_point_names_what_it_parses() -> None:
    with pytest.raises(InvalidTransferPoint, match=r"^the thing has 3 bytes"):
        parse_point(b"abc", "the thing")
