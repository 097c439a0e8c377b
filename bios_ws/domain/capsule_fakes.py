"""A fake ``CapsuleVerifier`` and the test signer whose capsules it accepts, for use-case tests.

A ``FakeCapsuleSigner`` "signs" as ``MARKER || len(name) || name || SHA-256(content)``;
its ``anchor`` (the bytes standing for its certificate in a trust set) is
``b"fake-signer:" + name``. ``FakeCapsuleVerifier`` refuses as the PKCS#7
verifier does, with the same ``CapsuleNotTrusted`` reasons: no signature
(unsigned), not a fake signature or a digest that does not match the content
(bad-signature), a signer whose anchor is not in the trust set
(untrusted-signer). It proves nothing about anyone: tests only.

Standard library only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from bios_ws.domain.capsule import (
    CapsuleSigner,
    CapsuleVerifier,
    UnverifiedCapsule,
    VerifiedCapsule,
)
from bios_ws.errors import CapsuleNotTrusted

MARKER = b"FAKE-CAPSULE-SIGNATURE/1\x00"
_ANCHOR_PREFIX = b"fake-signer:"
_DIGEST_SIZE = hashlib.sha256().digest_size


@dataclass(frozen=True, slots=True)
class FakeCapsuleSigner:
    """A named test signer; ``sign`` is a ``capsule_build.Signer``."""

    name: str

    def __post_init__(self) -> None:
        if not 0 < len(self.name.encode()) < 256:
            raise ValueError("a fake signer's name is 1 to 255 bytes of UTF-8")

    @property
    def anchor(self) -> bytes:
        """What stands for this signer's certificate in a trust set."""
        return _ANCHOR_PREFIX + self.name.encode()

    def sign(self, content: bytes) -> bytes:
        name = self.name.encode()
        return MARKER + bytes([len(name)]) + name + hashlib.sha256(content).digest()


class FakeCapsuleVerifier(CapsuleVerifier):
    """Accepts capsules signed by a ``FakeCapsuleSigner`` whose anchor is trusted."""

    def verify(self, capsule: UnverifiedCapsule, trust_anchors: Sequence[bytes], *,
               now: datetime) -> VerifiedCapsule:
        signature = capsule.authentication.signature
        if not signature:
            raise CapsuleNotTrusted("unsigned", "the capsule carries no signature")
        name, digest = _read(signature)
        if digest != hashlib.sha256(capsule.signed_content()).digest():
            raise CapsuleNotTrusted("bad-signature",
                                    "the signature does not match the capsule's content")
        signer = FakeCapsuleSigner(name.decode())
        if not trust_anchors:
            raise CapsuleNotTrusted("untrusted-signer", "no trusted signer certificates are given")
        if signer.anchor not in trust_anchors:
            raise CapsuleNotTrusted("untrusted-signer",
                                    f"the signer {signer.name!r} is not trusted")
        return VerifiedCapsule(capsule, _describe(signer), now)


def _read(signature: bytes) -> tuple[bytes, bytes]:
    if not signature.startswith(MARKER) or len(signature) <= len(MARKER):
        raise CapsuleNotTrusted("bad-signature", "not a fake test signature")
    rest = signature[len(MARKER):]
    length = rest[0]
    if length == 0 or len(rest) != 1 + length + _DIGEST_SIZE:
        raise CapsuleNotTrusted("bad-signature", "a malformed fake test signature")
    name = rest[1:1 + length]
    try:
        name.decode()
    except UnicodeDecodeError:
        raise CapsuleNotTrusted("bad-signature", "a malformed fake test signature") from None
    return name, rest[1 + length:]


def _describe(signer: FakeCapsuleSigner) -> CapsuleSigner:
    return CapsuleSigner(subject=f"CN={signer.name}", issuer=f"CN={signer.name}",
                         serial_number=0,
                         sha256_fingerprint=hashlib.sha256(signer.anchor).hexdigest())
