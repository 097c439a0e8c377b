"""Encrypted capsule delivery as docs/firmware-update.md ("Encrypted delivery (one-time
keys)") specifies it, written out independently of both implementations: HKDF by hand
with hmac, ECDH and AES-GCM from cryptography. A change of the spec's constants or layout
in either implementation fails the tests that compare against this."""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

UPLOAD = "0123456789abcdef0123456789abcdef"
OTHER_UPLOAD = "fedcba9876543210fedcba9876543210"
CAPSULE = bytes(range(256)) * 3 + b"the end"
# P-256: p, and b of y^2 = x^3 - 3x + b
P = 2**256 - 2**224 + 2**192 + 2**96 - 1
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 by hand (an empty salt is 32 zero bytes)."""
    prk = hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()
    okm, block, counter = b"", b"", 1
    while len(okm) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        okm += block
        counter += 1
    return okm[:length]


def spec_key_and_nonce(z1: bytes, z2: bytes, upload_id: str, s_pub: bytes, c_pub: bytes,
                       e_pub: bytes) -> tuple[bytes, bytes]:
    """key = okm[0:32], nonce = okm[32:44] of the specification."""
    okm = hkdf_sha256(z1 + z2, hashlib.sha256(upload_id.encode("ascii")).digest(),
                      b"vbios firmware transfer v1" + s_pub + c_pub + e_pub, 44)
    return okm[0:32], okm[32:44]


def spec_wrap_key(static: ec.EllipticCurvePrivateKey) -> bytes:
    """HKDF-SHA256(ikm = S's private scalar, info = "vbios upload key wrap v1")."""
    scalar = static.private_numbers().private_value.to_bytes(32, "big")
    return hkdf_sha256(scalar, b"", b"vbios upload key wrap v1", 32)


def point(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """The uncompressed X9.62 point of a key."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.X962,
                               serialization.PublicFormat.UncompressedPoint)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def valid_point() -> bytes:
    return point(new_key())


def ecdh(private: ec.EllipticCurvePrivateKey, public: bytes) -> bytes:
    peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public)
    return private.exchange(ec.ECDH(), peer)


def not_reduced_point() -> bytes:
    """A point on the curve written with X + p instead of X (not canonical)."""
    for x in range(1, 100):
        rhs = (x**3 - 3 * x + B) % P
        y = pow(rhs, (P + 1) // 4, P)
        if y * y % P == rhs:
            return b"\x04" + (x + P).to_bytes(32, "big") + y.to_bytes(32, "big")
    raise AssertionError("no small X on the curve")
