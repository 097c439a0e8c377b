"""The admin's recovery code: the key passphrases, recoverable without the TPM policy.

`vbios init` prints a random recovery code once and stores nowhere in clear;
``<home>/tpm/sealed/recovery.json`` holds the passphrases encrypted with
AES-256-GCM under a key derived from the code by scrypt. `vbios tpm reseal`
asks for it only when the boot PCRs changed (an intended firmware, bootloader
or kernel update): the TPM then cannot unseal, by design.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from bios_ws.errors import KeyUnreadable
from bios_ws.pki.files import PRIVATE_MODE, write_file_atomic

RECOVERY_FORMAT = 1
_AAD = b"vbios-recovery-v1"
_CODE_BYTES = 20
_SCRYPT_N = 2**15
_SCRYPT_R = 8
_SCRYPT_P = 1
_MAX_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class KeyPassphrases:
    """The passphrases of the server key and the CA key (never logged, never on disk)."""

    server: bytes
    ca: bytes

    def __repr__(self) -> str:
        return "KeyPassphrases(<hidden>)"

    @classmethod
    def generate(cls) -> KeyPassphrases:
        return cls(_random_passphrase(), _random_passphrase())

    def of(self, key: str) -> bytes:
        if key == "server":
            return self.server
        if key == "ca":
            return self.ca
        raise ValueError(f"unknown key {key!r}")


def _random_passphrase() -> bytes:
    return base64.urlsafe_b64encode(os.urandom(32))


def new_recovery_code() -> str:
    """160 random bits as 32 base32 characters in groups of four."""
    text = base64.b32encode(os.urandom(_CODE_BYTES)).decode("ascii")
    return "-".join(text[i:i + 4] for i in range(0, len(text), 4))


def normalize_code(code: str) -> bytes:
    """The code without separators, upper case; KeyUnreadable if it cannot be one."""
    cleaned = "".join(c for c in code.upper() if c not in "- \t\r\n")
    try:
        raw = base64.b32decode(cleaned)
    except ValueError:
        raise KeyUnreadable("this is not a vbios recovery code") from None
    if len(raw) != _CODE_BYTES:
        raise KeyUnreadable("this is not a vbios recovery code")
    return raw


def write_recovery(path: Path, code: str, passphrases: KeyPassphrases) -> None:
    salt = os.urandom(16)
    nonce = os.urandom(12)
    key = _derive(normalize_code(code), salt, _SCRYPT_N)
    plain = json.dumps({"server": passphrases.server.decode("ascii"),
                        "ca": passphrases.ca.decode("ascii")}).encode("ascii")
    sealed = AESGCM(key).encrypt(nonce, plain, _AAD)
    body = {
        "format": RECOVERY_FORMAT,
        "kdf": {"name": "scrypt", "n": _SCRYPT_N, "r": _SCRYPT_R, "p": _SCRYPT_P,
                "salt": salt.hex()},
        "cipher": "AES-256-GCM",
        "nonce": nonce.hex(),
        "ciphertext": sealed.hex(),
    }
    write_file_atomic(path, (json.dumps(body, indent=2) + "\n").encode("ascii"), PRIVATE_MODE)


def read_recovery(path: Path, code: str) -> KeyPassphrases:
    """Decrypt the passphrases with ``code``; KeyUnreadable if the code is wrong."""
    raw_code = normalize_code(code)
    try:
        with path.open("rb") as handle:
            body = json.loads(handle.read(_MAX_FILE_BYTES))
        kdf = body["kdf"]
        n = int(kdf["n"])
        if body.get("format") != RECOVERY_FORMAT or not 2**14 <= n <= 2**20:
            raise ValueError("unsupported recovery file")
        salt, nonce = bytes.fromhex(kdf["salt"]), bytes.fromhex(body["nonce"])
        ciphertext = bytes.fromhex(body["ciphertext"])
    except FileNotFoundError:
        raise KeyUnreadable(f"no recovery file {path}") from None
    except (OSError, ValueError, KeyError, TypeError):
        raise KeyUnreadable(f"recovery file {path} is unreadable or damaged") from None
    try:
        plain = AESGCM(_derive(raw_code, salt, n)).decrypt(nonce, ciphertext, _AAD)
    except InvalidTag:
        raise KeyUnreadable("wrong recovery code (or damaged recovery file)") from None
    data = json.loads(plain)
    return KeyPassphrases(data["server"].encode("ascii"), data["ca"].encode("ascii"))


def _derive(code: bytes, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=_SCRYPT_R, p=_SCRYPT_P).derive(code)
