"""Encrypted capsule delivery: the vBIOS's TransferKey against the guest's OneTimeSender,
and both against the specification (docs/firmware-update.md, "Encrypted delivery"),
computed here independently (HKDF by hand with hmac, ECDH and AES-GCM from cryptography)
so that a change of the spec's constants or layout is caught."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from vbios_client._transfer import (
    InvalidServerKey,
    OneTimeKeyUsed,
    OneTimeSender,
)

from bios_ws.firmware.transfer import (
    Accepted,
    InvalidTransferPoint,
    TransferDecryptionFailed,
    TransferKey,
    parse_point,
)

UPLOAD = "0123456789abcdef0123456789abcdef"
OTHER_UPLOAD = "fedcba9876543210fedcba9876543210"
CAPSULE = bytes(range(256)) * 3 + b"the end"
# P-256: p, and b of y^2 = x^3 - 3x + b
P = 2**256 - 2**224 + 2**192 + 2**96 - 1
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B


# -- the specification, written out here ------------------------------------------------


def _hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 by hand."""
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def _spec_key_and_nonce(z1: bytes, z2: bytes, upload_id: str, s_pub: bytes, c_pub: bytes,
                        e_pub: bytes) -> tuple[bytes, bytes]:
    okm = _hkdf_sha256(z1 + z2, hashlib.sha256(upload_id.encode("ascii")).digest(),
                       b"vbios firmware transfer v1" + s_pub + c_pub + e_pub, 44)
    return okm[0:32], okm[32:44]


def _point(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.X962,
                               serialization.PublicFormat.UncompressedPoint)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _ecdh(private: ec.EllipticCurvePrivateKey, public: bytes) -> bytes:
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    return private.exchange(ec.ECDH(), peer)


def _not_reduced_point() -> bytes:
    """A point on the curve written with X + p instead of X (not canonical)."""
    for x in range(1, 100):
        rhs = (x**3 - 3 * x + B) % P
        y = pow(rhs, (P + 1) // 4, P)
        if y * y % P == rhs:
            return b"\x04" + (x + P).to_bytes(32, "big") + y.to_bytes(32, "big")
    raise AssertionError("no small X on the curve")


@pytest.fixture
def static() -> ec.EllipticCurvePrivateKey:
    return _new_key()


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
    assert server.public_point() == _point(static)
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
    client = _new_key()
    c_pub, s_pub = _point(client), _point(static)
    accepted = server.accept(UPLOAD, c_pub)
    e_pub = accepted.server_one_time_public
    key, nonce = _spec_key_and_nonce(_ecdh(client, s_pub), _ecdh(client, e_pub), UPLOAD,
                                     s_pub, c_pub, e_pub)
    ciphertext = AESGCM(key).encrypt(nonce, CAPSULE, UPLOAD.encode("ascii"))
    assert server.decrypt(UPLOAD, accepted.wrapped_key, ciphertext) == CAPSULE


def test_the_wrapped_key_is_the_content_key_under_the_wrap_key_of_the_specification(
        server: TransferKey, static: ec.EllipticCurvePrivateKey) -> None:
    client = _new_key()
    c_pub, s_pub = _point(client), _point(static)
    accepted = server.accept(UPLOAD, c_pub)
    e_pub = accepted.server_one_time_public
    scalar = static.private_numbers().private_value.to_bytes(32, "big")
    wrap_key = _hkdf_sha256(scalar, b"", b"vbios upload key wrap v1", 32)
    blob = accepted.wrapped_key
    opened = AESGCM(wrap_key).decrypt(blob[:12], blob[12:], UPLOAD.encode("ascii"))
    assert opened == b"".join(_spec_key_and_nonce(
        _ecdh(client, s_pub), _ecdh(client, e_pub), UPLOAD, s_pub, c_pub, e_pub))


def test_the_guest_encrypts_as_the_specification_says() -> None:
    static, one_time = _new_key(), _new_key()
    s_pub, e_pub = _point(static), _point(one_time)
    sender = OneTimeSender()
    c_pub = sender.client_public()
    ciphertext = sender.encrypt(UPLOAD, s_pub, e_pub, CAPSULE)
    key, nonce = _spec_key_and_nonce(_ecdh(static, c_pub), _ecdh(one_time, c_pub), UPLOAD,
                                     s_pub, c_pub, e_pub)
    assert AESGCM(key).decrypt(nonce, ciphertext, UPLOAD.encode("ascii")) == CAPSULE


def test_the_hand_written_hkdf_is_rfc_5869() -> None:
    # RFC 5869, test case 1
    okm = _hkdf_sha256(bytes.fromhex("0b" * 22), bytes.fromhex("000102030405060708090a0b0c"),
                       bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"
                         "34007208d5b887185865")


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


def _valid_point() -> bytes:
    return _point(_new_key())


@pytest.mark.parametrize(("point", "message"), [
    (b"", "is empty"),
    (b"\x00", "point at infinity"),
    (b"\x04" + bytes(64), "all-zero coordinates"),
    (_valid_point()[:64], "has 64 bytes"),
    (_valid_point() + b"\x00", "has 66 bytes"),
    (b"\x04" + _valid_point()[1:33], "has 33 bytes"),
    (b"\x03" + _valid_point()[1:33], "compressed point"),
    (b"\x06" + _valid_point()[1:], "starts with 0x06"),
    (b"\x05" + _valid_point()[1:], "starts with 0x05"),
    (_valid_point()[:64] + bytes([_valid_point()[64] ^ 1]), "not a point on the P-256 curve"),
    (b"\x04" + (1).to_bytes(32, "big") + (2).to_bytes(32, "big"), "not a point on the P-256"),
    (_not_reduced_point(), "not a point on the P-256 curve"),
    (_point(ec.generate_private_key(ec.SECP384R1()))[:65], "not a point on the P-256 curve"),
], ids=["empty", "identity", "zero coordinates", "short", "long", "X only",
        "compressed", "hybrid", "unknown form", "Y off by one", "(1, 2)", "X + p",
        "P-384 bytes"])
def test_an_invalid_client_point_is_refused(server: TransferKey, point: bytes,
                                            message: str) -> None:
    with pytest.raises(InvalidTransferPoint, match=message) as refused:
        server.accept(UPLOAD, point)
    assert str(refused.value).startswith("the client key ")


def test_the_client_point_may_not_be_the_vbios_key(server: TransferKey) -> None:
    with pytest.raises(InvalidTransferPoint, match="the vBIOS's own transfer key"):
        server.accept(UPLOAD, server.public_point())


def test_a_compressed_form_of_a_valid_key_is_refused(server: TransferKey) -> None:
    compressed = _new_key().public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
    with pytest.raises(InvalidTransferPoint, match="send the uncompressed form"):
        server.accept(UPLOAD, compressed)


def test_parse_point_names_what_it_parses() -> None:
    with pytest.raises(InvalidTransferPoint, match="^the thing has 3 bytes"):
        parse_point(b"abc", "the thing")


# -- the guest's one-time sender ------------------------------------------------------------


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
        sender.encrypt(UPLOAD, b"\x04" + bytes(64), _valid_point(), CAPSULE)
    with pytest.raises(OneTimeKeyUsed):
        sender.encrypt(UPLOAD, _valid_point(), _valid_point(), CAPSULE)


def test_senders_have_their_own_keys() -> None:
    assert OneTimeSender().client_public() != OneTimeSender().client_public()
    assert len(OneTimeSender().client_public()) == 65


@pytest.mark.parametrize(("static", "one_time", "message"), [
    (b"\x04" + bytes(64), None, "transfer key is the point at infinity"),
    (None, b"\x00", "one-time key is not an uncompressed P-256 point"),
    (None, b"\x02" + bytes(32), "one-time key is not an uncompressed P-256 point"),
    (b"\x04" + (1).to_bytes(32, "big") * 2, None, "transfer key is not a point on the P-256"),
    (None, _not_reduced_point(), "one-time key is not a point on the P-256"),
], ids=["static at infinity", "identity", "compressed", "off the curve", "X + p"])
def test_the_guest_refuses_invalid_server_points(static: bytes | None, one_time: bytes | None,
                                                 message: str) -> None:
    with pytest.raises(InvalidServerKey, match=message):
        OneTimeSender().encrypt(UPLOAD, static or _valid_point(), one_time or _valid_point(),
                                CAPSULE)


def test_the_guest_refuses_one_key_twice_or_its_own_key() -> None:
    point = _valid_point()
    with pytest.raises(InvalidServerKey, match="one-time key is its static"):
        OneTimeSender().encrypt(UPLOAD, point, point, CAPSULE)
    sender = OneTimeSender()
    with pytest.raises(InvalidServerKey, match="this client's own key"):
        sender.encrypt(UPLOAD, point, sender.client_public(), CAPSULE)


def test_the_client_module_does_not_import_the_server() -> None:
    import vbios_client._transfer as client_transfer

    for name, value in vars(client_transfer).items():
        origin = getattr(value, "__module__", None) or getattr(value, "__name__", "")
        assert not str(origin).startswith("bios_ws"), name
