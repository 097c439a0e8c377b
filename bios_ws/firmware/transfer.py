"""Encrypted capsule delivery, the vBIOS's side: the static transfer key and one-time keys.

The specification is docs/firmware-update.md, "Encrypted delivery (one-time keys)". Keys
are NIST P-256; public keys travel as uncompressed X9.62 points (65 bytes, ``04 || X ||
Y``). For one upload:

- ``TransferKey.accept`` checks the client's one-time point ``C.pub``, makes the
  server's one-time pair ``E``, computes ``z1 = ECDH(S, C)`` and ``z2 = ECDH(E, C)``,
  derives the content key and nonce (``derive_content_key``), and lets ``E.priv`` go.
  It answers ``E.pub``, the content key wrapped for the store, and the fingerprint of
  ``C.pub`` (SHA-256 hex) the caller records to refuse a replayed client key.
- ``TransferKey.decrypt`` unwraps the content key and opens the capsule
  (AES-256-GCM, associated data = the upload id). Anything that does not open raises
  ``TransferDecryptionFailed``; nothing partial is returned.

The wrapped key is ``wrap nonce (12) || AES-256-GCM(wrap key, wrap nonce, content key
(32) || content nonce (12), aad = upload id)``: 72 bytes. The wrap key is
``HKDF-SHA256(ikm = S's private scalar, 32 bytes big-endian, salt = none (32 zero
bytes), info = "vbios upload key wrap v1", length = 32)``: only a process that has
decrypted ``S`` (with the server key's passphrase) can unwrap.

The static key ``S`` lives in ``pki/transfer-key.pem``, encrypted PKCS#8 under the
server key's passphrase, 0600: ``create_transfer_key``, ``load_transfer_key``,
``ensure_transfer_key`` (a home made before encrypted delivery gets its key at the
server's start).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bios_ws.domain.firmware_upload import TAG_BYTES
from bios_ws.errors import AdminError, KeyUnreadable
from bios_ws.home import Home
from bios_ws.pki.authority import load_private_key
from bios_ws.pki.certs import encrypted_key_pem
from bios_ws.pki.files import PRIVATE_MODE, write_file_atomic

#: An uncompressed X9.62 P-256 point: 0x04, X (32 bytes), Y (32 bytes).
POINT_BYTES = 65
UNCOMPRESSED = 0x04
KEY_BYTES = 32
NONCE_BYTES = 12
#: The HKDF info prefixes of the specification (ASCII).
TRANSFER_INFO = b"vbios firmware transfer v1"
WRAP_INFO = b"vbios upload key wrap v1"
#: wrap nonce || wrapped (content key || content nonce) || tag
WRAPPED_KEY_BYTES = NONCE_BYTES + KEY_BYTES + NONCE_BYTES + TAG_BYTES
_CURVE = ec.SECP256R1()


class InvalidTransferPoint(ValueError):
    """A public key given for a transfer is refused; the message says which and why."""


class TransferDecryptionFailed(ValueError):
    """An encrypted upload does not open: its ciphertext or its wrapped key was altered,
    belongs to another upload, or was made for another transfer key."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """What the server answers (and keeps) for a client's one-time key."""

    #: ``E.pub``: the server's one-time point (its private half is already gone).
    server_one_time_public: bytes
    #: The content key and nonce wrapped for the store (``WRAPPED_KEY_BYTES``).
    wrapped_key: bytes
    #: SHA-256 hex of ``C.pub``: a client key seen before is a replay.
    client_key_fingerprint: str


class TransferKey:
    """The vBIOS's static transfer key ``S``, decrypted in memory."""

    __slots__ = ("_private", "_public", "_wrap")

    def __init__(self, private: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private.curve, ec.SECP256R1):
            raise ValueError(f"a transfer key is a P-256 key, not {private.curve.name}")
        self._private = private
        self._public = encode_point(private.public_key())
        self._wrap = AESGCM(_wrap_key(private))

    @classmethod
    def generate(cls) -> TransferKey:
        """A fresh key (``create_transfer_key`` stores one)."""
        return cls(ec.generate_private_key(_CURVE))

    def public_point(self) -> bytes:
        """``S.pub`` as an uncompressed X9.62 point (65 bytes)."""
        return self._public

    def accept(self, upload_id: str, client_public: bytes) -> Accepted:
        """Derive the content key of ``upload_id`` for the client's one-time point
        ``client_public``; InvalidTransferPoint if that point is refused."""
        aad = upload_id_bytes(upload_id)
        client = parse_point(client_public, "the client key")
        if client_public == self._public:
            raise InvalidTransferPoint("the client key is the vBIOS's own transfer key;"
                                       " make a one-time key pair for each upload")
        one_time = ec.generate_private_key(_CURVE)
        one_time_public = encode_point(one_time.public_key())
        z2 = one_time.exchange(ec.ECDH(), client)
        del one_time  # E.priv is never kept, nor stored
        z1 = self._private.exchange(ec.ECDH(), client)
        key, nonce = derive_content_key(z1, z2, upload_id, self._public, client_public,
                                        one_time_public)
        wrap_nonce = secrets.token_bytes(NONCE_BYTES)
        wrapped = wrap_nonce + self._wrap.encrypt(wrap_nonce, key + nonce, aad)
        return Accepted(one_time_public, wrapped, client_key_fingerprint(client_public))

    def decrypt(self, upload_id: str, wrapped_key: bytes, ciphertext: bytes) -> bytes:
        """The capsule inside ``ciphertext`` (capsule || tag) of ``upload_id``, or
        TransferDecryptionFailed; nothing partial is ever returned."""
        aad = upload_id_bytes(upload_id)
        key, nonce = self._unwrap(aad, wrapped_key)
        if len(ciphertext) < TAG_BYTES:
            raise TransferDecryptionFailed(
                f"the encrypted capsule has {len(ciphertext)} bytes, fewer than its"
                f" {TAG_BYTES}-byte authentication tag")
        try:
            return AESGCM(key).decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise TransferDecryptionFailed(
                "the encrypted capsule fails its authentication tag: it was altered,"
                " truncated or extended, or encrypted for another upload") from None

    def _unwrap(self, aad: bytes, wrapped_key: bytes) -> tuple[bytes, bytes]:
        if len(wrapped_key) != WRAPPED_KEY_BYTES:
            raise TransferDecryptionFailed(
                f"the wrapped content key has {len(wrapped_key)} bytes, not"
                f" {WRAPPED_KEY_BYTES}")
        try:
            opened = self._wrap.decrypt(wrapped_key[:NONCE_BYTES], wrapped_key[NONCE_BYTES:],
                                        aad)
        except InvalidTag:
            raise TransferDecryptionFailed(
                "the wrapped content key does not open: it was altered, belongs to another"
                " upload, or was wrapped by another transfer key") from None
        return opened[:KEY_BYTES], opened[KEY_BYTES:]


def derive_content_key(z1: bytes, z2: bytes, upload_id: str, static_public: bytes,
                       client_public: bytes, one_time_public: bytes) -> tuple[bytes, bytes]:
    """(key, nonce) of the specification from the two ECDH secrets and the three points."""
    okm = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES + NONCE_BYTES,
        salt=hashlib.sha256(upload_id_bytes(upload_id)).digest(),
        info=TRANSFER_INFO + static_public + client_public + one_time_public,
    ).derive(z1 + z2)
    return okm[:KEY_BYTES], okm[KEY_BYTES:]


def parse_point(data: bytes, what: str) -> ec.EllipticCurvePublicKey:
    """``data`` as a P-256 public key if it is a canonical uncompressed point on the
    curve, not the identity; InvalidTransferPoint naming ``what`` otherwise."""
    if not data:
        raise InvalidTransferPoint(f"{what} is empty; a P-256 public key is an uncompressed"
                                   f" X9.62 point of {POINT_BYTES} bytes")
    if data == b"\x00":
        raise InvalidTransferPoint(f"{what} is the point at infinity (the identity), not"
                                   " a public key")
    if len(data) != POINT_BYTES:
        form = (" (a compressed point: send the uncompressed form)"
                if len(data) == 33 and data[0] in (2, 3) else "")
        raise InvalidTransferPoint(f"{what} has {len(data)} bytes{form}; a P-256 public key"
                                   f" is an uncompressed X9.62 point of {POINT_BYTES} bytes")
    if data[0] != UNCOMPRESSED:
        raise InvalidTransferPoint(f"{what} starts with 0x{data[0]:02x}; an uncompressed"
                                   f" X9.62 point starts with 0x{UNCOMPRESSED:02x}")
    if not any(data[1:]):
        raise InvalidTransferPoint(f"{what} has all-zero coordinates (the point at infinity"
                                   " in some encodings), not a public key")
    try:
        point = ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, data)
    except ValueError:
        raise InvalidTransferPoint(f"{what} is not a point on the P-256 curve") from None
    if encode_point(point) != data:
        raise InvalidTransferPoint(f"{what} is not in canonical form")
    return point


def encode_point(public: ec.EllipticCurvePublicKey) -> bytes:
    """The uncompressed X9.62 encoding of ``public``."""
    return public.public_bytes(serialization.Encoding.X962,
                               serialization.PublicFormat.UncompressedPoint)


def client_key_fingerprint(client_public: bytes) -> str:
    """What identifies a client key for replay: SHA-256 hex of its point."""
    return hashlib.sha256(client_public).hexdigest()


def upload_id_bytes(upload_id: str) -> bytes:
    """The upload id as ASCII (the salt's input and the associated data)."""
    if not upload_id or not upload_id.isascii():
        raise ValueError(f"upload id {upload_id!r} is not a non-empty ASCII string")
    return upload_id.encode("ascii")


def _wrap_key(private: ec.EllipticCurvePrivateKey) -> bytes:
    scalar = private.private_numbers().private_value.to_bytes(KEY_BYTES, "big")
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
                info=WRAP_INFO).derive(scalar)


# -- the key file -----------------------------------------------------------------------


def load_transfer_key(path: Path, passphrase: bytes) -> TransferKey:
    """Decrypt the transfer key at ``path``; KeyUnreadable on any failure (missing,
    wrong passphrase, damaged, not a P-256 key)."""
    key = load_private_key(path, passphrase)
    if not isinstance(key.curve, ec.SECP256R1):
        raise KeyUnreadable(f"transfer key {path} is not a P-256 key")
    return TransferKey(key)


def create_transfer_key(path: Path, passphrase: bytes, *, replace: bool = False
                        ) -> TransferKey:
    """Make a new transfer key and write it to ``path`` (encrypted PKCS#8 PEM under
    ``passphrase``, 0600 from its first byte, atomically); the key.

    An existing file is refused (AdminError) unless ``replace``: the uploads in flight
    hold content keys wrapped by the key in use. Without ``replace`` the file appears
    by a hard link, so of two processes creating it at once exactly one succeeds.
    """
    private = ec.generate_private_key(_CURVE)
    pem = encrypted_key_pem(private, passphrase)
    if replace:
        write_file_atomic(path, pem, PRIVATE_MODE)
        return TransferKey(private)
    staged = path.with_name(f".{path.name}.{secrets.token_hex(6)}.new")
    write_file_atomic(staged, pem, PRIVATE_MODE)
    try:
        os.link(staged, path)
    except FileExistsError:
        raise AdminError(f"transfer key {path} exists already") from None
    except OSError as exc:
        raise AdminError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        staged.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return TransferKey(private)


def ensure_transfer_key(home: Home, passphrase: bytes) -> TransferKey:
    """The home's transfer key, made now if the home has none (made before encrypted
    delivery existed). ``passphrase`` is the server key's (``home.key_passphrase("server")``).
    """
    path = home.transfer_key
    if not path.exists():
        try:
            return create_transfer_key(path, passphrase)
        except AdminError:
            if not path.exists():
                raise
            # another process made it first: use theirs
    return load_transfer_key(path, passphrase)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise AdminError(f"cannot open {directory}: {exc.strerror or exc}") from None
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
