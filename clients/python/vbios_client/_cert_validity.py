"""When a PEM certificate is valid, read with the standard library only.

Automatic renewal asks this of the bundle's certificate before every command of
``vbios-client``; reading it through cryptography would double the command's start-up
cost. Only the DER path to ``tbsCertificate.validity`` is walked (RFC 5280), and
anything unexpected is a ValueError: the caller then has no date, never a wrong one.
A test compares the result with cryptography's on certificates of both time forms.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone

_UTC = timezone.utc  # noqa: UP017 - the client distribution still supports Python 3.10
_BEGIN, _END = b"-----BEGIN CERTIFICATE-----", b"-----END CERTIFICATE-----"
_INTEGER, _SEQUENCE, _VERSION, _UTC_TIME, _GENERALIZED_TIME = 0x02, 0x30, 0xA0, 0x17, 0x18


def validity(pem: bytes) -> tuple[datetime, datetime]:
    """notBefore and notAfter (aware, UTC) of the first certificate in ``pem``."""
    start = pem.find(_BEGIN)
    end = pem.find(_END, start + 1)
    if start < 0 or end < 0:
        raise ValueError("no PEM certificate")
    der = base64.b64decode(b"".join(pem[start + len(_BEGIN):end].split()), validate=True)
    tag, at, _ = _item(der, 0)
    _expect(tag, _SEQUENCE)
    tag, at, tbs_end = _item(der, at)  # tbsCertificate
    _expect(tag, _SEQUENCE)
    tag, _, after = _item(der, at)
    if tag == _VERSION:
        tag, _, after = _item(der, after)
    _expect(tag, _INTEGER)  # serialNumber
    for _skipped in ("signature", "issuer"):
        tag, _, after = _item(der, after)
        _expect(tag, _SEQUENCE)
    tag, at, validity_end = _item(der, after)
    _expect(tag, _SEQUENCE)
    if validity_end > tbs_end:
        raise ValueError("validity runs past tbsCertificate")
    not_before, at = _time(der, at)
    not_after, at = _time(der, at)
    if at != validity_end:
        raise ValueError("validity holds more than two times")
    return not_before, not_after


def _item(der: bytes, at: int) -> tuple[int, int, int]:
    """The tag, content start and content end of the DER item at ``at``."""
    if at + 2 > len(der):
        raise ValueError("truncated DER")
    tag, length = der[at], der[at + 1]
    at += 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or at + count > len(der):
            raise ValueError("unsupported DER length")
        length = int.from_bytes(der[at:at + count], "big")
        at += count
    if at + length > len(der):
        raise ValueError("truncated DER")
    return tag, at, at + length


def _expect(tag: int, wanted: int) -> None:
    if tag != wanted:
        raise ValueError(f"DER tag {tag:#x} where {wanted:#x} belongs")


def _time(der: bytes, at: int) -> tuple[datetime, int]:
    tag, content, end = _item(der, at)
    text = der[content:end].decode("ascii")
    if tag == _UTC_TIME and len(text) == 13 and text.endswith("Z"):
        year = int(text[:2])
        text = f"{1900 + year if year >= 50 else 2000 + year}{text[2:]}"  # RFC 5280 4.1.2.5.1
    elif not (tag == _GENERALIZED_TIME and len(text) == 15 and text.endswith("Z")):
        raise ValueError("a validity time is neither UTCTime nor GeneralizedTime in UTC")
    return datetime.strptime(text, "%Y%m%d%H%M%SZ").replace(tzinfo=_UTC), end
