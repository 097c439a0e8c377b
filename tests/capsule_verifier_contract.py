"""The CapsuleVerifier port's contract, run against FakeCapsuleVerifier (unit) and
Pkcs7CapsuleVerifier (integration).

Subclass ``CapsuleVerifierContract`` in a ``Test...`` class and provide a ``kit`` fixture: a
``VerifierKit`` with the verifier, a signer it should trust, that signer's trust anchor, and a
signer it should not trust.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import pytest

from bios_ws.domain.capsule import CapsuleVerifier, VerifiedCapsule, parse_capsule
from bios_ws.domain.capsule_build import CapsuleSpec, Signer, build_capsule
from bios_ws.errors import CapsuleNotTrusted

FIRMWARE_CLASS = uuid.UUID("9d1e2c3b-4a5f-4e6d-8c7b-0a1b2c3d4e5f")
SPEC = CapsuleSpec(image_type_id=FIRMWARE_CLASS, fw_version=0x300, lowest_supported_version=0x200,
                   monotonic_count=77)
IMAGE = bytes(range(256)) * 8
AUTH = 96  # the MonotonicCount's offset in a version-3 capsule


@dataclass(frozen=True)
class VerifierKit:
    verifier: CapsuleVerifier
    trusted_signer: Signer
    trusted_anchor: bytes      # what the verifier takes as the trusted signer's certificate
    untrusted_signer: Signer   # chains to no anchor given
    trusted_subject: str       # the trusted signer's subject, as VerifiedCapsule.signer shows it
    now: datetime


def capsule_signed_by(sign: Signer) -> bytes:
    return build_capsule(IMAGE, SPEC, sign)


def flipped(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:]


class CapsuleVerifierContract:
    """Behaviour every CapsuleVerifier must show."""

    def verify(self, kit: VerifierKit, data: bytes, *anchors: bytes) -> VerifiedCapsule:
        return kit.verifier.verify(parse_capsule(data), list(anchors), now=kit.now)

    def refused(self, kit: VerifierKit, data: bytes, *anchors: bytes) -> CapsuleNotTrusted:
        with pytest.raises(CapsuleNotTrusted) as caught:
            self.verify(kit, data, *anchors)
        return caught.value

    def test_a_capsule_of_a_trusted_signer_verifies(self, kit: VerifierKit) -> None:
        verified = self.verify(kit, capsule_signed_by(kit.trusted_signer), kit.trusted_anchor)
        assert (verified.firmware_class, verified.fw_version, verified.lowest_supported_version,
                verified.monotonic_count, verified.image) == (
            FIRMWARE_CLASS, 0x300, 0x200, 77, IMAGE)
        assert verified.signer.subject == kit.trusted_subject
        assert len(verified.signer.sha256_fingerprint) == 64
        assert verified.verified_at == kit.now

    def test_a_tampered_image_is_refused(self, kit: VerifierKit) -> None:
        data = capsule_signed_by(kit.trusted_signer)
        refusal = self.refused(kit, flipped(data, len(data) - 1), kit.trusted_anchor)
        assert refusal.reason == "bad-signature"

    def test_a_tampered_fw_version_is_refused(self, kit: VerifierKit) -> None:
        data = capsule_signed_by(kit.trusted_signer)
        fw_version_at = len(data) - len(IMAGE) - 16 + 8
        refusal = self.refused(kit, flipped(data, fw_version_at + 2), kit.trusted_anchor)
        assert refusal.reason == "bad-signature"

    def test_a_tampered_monotonic_count_is_refused(self, kit: VerifierKit) -> None:
        data = capsule_signed_by(kit.trusted_signer)
        assert data[AUTH] == 77
        refusal = self.refused(kit, flipped(data, AUTH), kit.trusted_anchor)
        assert refusal.reason == "bad-signature"

    def test_an_untrusted_signer_is_refused(self, kit: VerifierKit) -> None:
        refusal = self.refused(kit, capsule_signed_by(kit.untrusted_signer), kit.trusted_anchor)
        assert refusal.reason == "untrusted-signer"

    def test_no_trusted_signers_trust_nothing(self, kit: VerifierKit) -> None:
        refusal = self.refused(kit, capsule_signed_by(kit.trusted_signer))
        assert refusal.reason == "untrusted-signer"

    def test_an_unsigned_capsule_is_refused(self, kit: VerifierKit) -> None:
        refusal = self.refused(kit, capsule_signed_by(lambda content: b""), kit.trusted_anchor)
        assert refusal.reason == "unsigned"

    def test_a_garbage_signature_is_refused(self, kit: VerifierKit) -> None:
        refusal = self.refused(kit, capsule_signed_by(lambda content: b"\x30\x03\x02\x01\x00"),
                               kit.trusted_anchor)
        assert refusal.reason == "bad-signature"

    def test_a_signature_of_other_content_is_refused(self, kit: VerifierKit) -> None:
        signature_of_other = kit.trusted_signer(b"other content")
        refusal = self.refused(kit, capsule_signed_by(lambda content: signature_of_other),
                               kit.trusted_anchor)
        assert refusal.reason == "bad-signature"
