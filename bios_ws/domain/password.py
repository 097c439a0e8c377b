"""Password hashing with scrypt (standard library). Hashes never leave the store."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable

# scrypt cost: 16 MiB of memory and about 40 ms per hash on one core.
_N, _R, _P = 2**14, 8, 1
_SALT_BYTES = 16
_KEY_BYTES = 32
_PREFIX = "scrypt"


def hash_password(
    password: str, *, salt_source: Callable[[int], bytes] = secrets.token_bytes
) -> str:
    salt = salt_source(_SALT_BYTES)
    key = _derive(password, salt, _N, _R, _P)
    return "$".join((_PREFIX, str(_N), str(_R), str(_P), _b64(salt), _b64(key)))


def verify_password(password: str, encoded: str) -> bool:
    try:
        prefix, n, r, p, salt, key = encoded.split("$")
        if prefix != _PREFIX:
            return False
        expected = base64.b64decode(key)
        actual = _derive(password, base64.b64decode(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _derive(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024,
        dklen=_KEY_BYTES,
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
