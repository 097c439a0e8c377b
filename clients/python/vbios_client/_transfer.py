"""Encrypted capsule delivery, the guest's side: one one-time key pair per upload.

The specification is the server's docs/firmware-update.md, "Encrypted delivery
(one-time keys)". Keys are NIST P-256; public keys travel as uncompressed X9.62 points
(65 bytes, ``04 || X || Y``)::

    sender = OneTimeSender()
    # BeginFirmwareUpload(Size, Sha256, ClientKey=sender.client_public())
    #   -> the vBIOS's static key S.pub and its one-time key E.pub
    ciphertext = sender.encrypt(upload_id, s_pub, e_pub, capsule)   # capsule || tag
    # then UploadFirmwareChunk... with the ciphertext, as a plain upload

``encrypt`` computes ``z1 = ECDH(C, S)``, ``z2 = ECDH(C, E)``, the content key and nonce
(HKDF-SHA256 over ``z1 || z2``, salt SHA-256(upload id), info ``"vbios firmware
transfer v1" || S.pub || C.pub || E.pub``), and AES-256-GCM with the upload id as
associated data. The private key ``C`` is used once: ``encrypt`` lets it go first, so a
second call raises ``OneTimeKeyUsed`` (the server refuses a client key it has seen
anyway), and so does a call after the server's points were refused.

Independent of the server's package (``bios_ws``): this file repeats the derivation.
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vbios_client.exceptions import VbiosClientError

POINT_BYTES = 65
UNCOMPRESSED = 0x04
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
TRANSFER_INFO = b"vbios firmware transfer v1"
_CURVE = ec.SECP256R1()


class InvalidServerKey(VbiosClientError, ValueError):
    """A public key the server answered is not a usable P-256 point: nothing was
    encrypted."""


class OneTimeKeyUsed(VbiosClientError, RuntimeError):
    """This sender's one-time key was used already: make a new sender (and a new
    upload) for each capsule."""


class OneTimeSender:
    """One client one-time key pair ``C``, for the encryption of one capsule."""

    __slots__ = ("_private", "_public")

    def __init__(self) -> None:
        self._private: ec.EllipticCurvePrivateKey | None = ec.generate_private_key(_CURVE)
        self._public = _encode(self._private.public_key())

    def client_public(self) -> bytes:
        """``C.pub`` as an uncompressed X9.62 point (65 bytes): BeginFirmwareUpload's
        ClientKey."""
        return self._public

    @property
    def used(self) -> bool:
        """True once ``encrypt`` was called: the private key is gone."""
        return self._private is None

    def encrypt(self, upload_id: str, server_static_public: bytes,
                server_one_time_public: bytes, capsule: bytes) -> bytes:
        """``capsule`` encrypted for ``upload_id``: ciphertext || 16-byte tag.

        InvalidServerKey if a server point is refused; OneTimeKeyUsed on a second call.
        """
        private, self._private = self._private, None
        if private is None:
            raise OneTimeKeyUsed("this one-time key was used already; make a new"
                                 " OneTimeSender (and a new upload) for each capsule")
        aad = _upload_id_bytes(upload_id)
        static = _parse_point(server_static_public, "the vBIOS's transfer key")
        one_time = _parse_point(server_one_time_public, "the vBIOS's one-time key")
        if server_static_public == server_one_time_public:
            raise InvalidServerKey("the vBIOS's one-time key is its static transfer key")
        if self._public in (server_static_public, server_one_time_public):
            raise InvalidServerKey("the vBIOS answered this client's own key as its key")
        z1 = private.exchange(ec.ECDH(), static)
        z2 = private.exchange(ec.ECDH(), one_time)
        del private
        okm = HKDF(
            algorithm=hashes.SHA256(),
            length=KEY_BYTES + NONCE_BYTES,
            salt=hashlib.sha256(aad).digest(),
            info=TRANSFER_INFO + server_static_public + self._public + server_one_time_public,
        ).derive(z1 + z2)
        return AESGCM(okm[:KEY_BYTES]).encrypt(okm[KEY_BYTES:], capsule, aad)


def _parse_point(data: bytes, what: str) -> ec.EllipticCurvePublicKey:
    if len(data) != POINT_BYTES or data[0] != UNCOMPRESSED:
        raise InvalidServerKey(f"{what} is not an uncompressed P-256 point ({len(data)}"
                               f" bytes; expected {POINT_BYTES} starting with 0x04)")
    if not any(data[1:]):
        raise InvalidServerKey(f"{what} is the point at infinity, not a public key")
    try:
        point = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, data)
    except ValueError:
        raise InvalidServerKey(f"{what} is not a point on the P-256 curve") from None
    if _encode(point) != data:
        raise InvalidServerKey(f"{what} is not in canonical form")
    return point


def _encode(public: ec.EllipticCurvePublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.X962,
                               serialization.PublicFormat.UncompressedPoint)


def _upload_id_bytes(upload_id: str) -> bytes:
    if not upload_id or not upload_id.isascii():
        raise ValueError(f"upload id {upload_id!r} is not a non-empty ASCII string")
    return upload_id.encode("ascii")
