"""FakeCapsuleVerifier keeps the CapsuleVerifier port's contract, plus its own signature form."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from bios_ws.domain.capsule import parse_capsule
from bios_ws.domain.capsule_fakes import MARKER, FakeCapsuleSigner, FakeCapsuleVerifier
from bios_ws.errors import CapsuleNotTrusted
from tests.capsule_verifier_contract import (
    CapsuleVerifierContract,
    VerifierKit,
    capsule_signed_by,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TRUSTED = FakeCapsuleSigner("Test Capsule Signer")
UNTRUSTED = FakeCapsuleSigner("Someone Else")


@pytest.fixture
def kit() -> VerifierKit:
    return VerifierKit(FakeCapsuleVerifier(), TRUSTED.sign, TRUSTED.anchor, UNTRUSTED.sign,
                       "CN=Test Capsule Signer", NOW)


class TestFakeCapsuleVerifierContract(CapsuleVerifierContract):
    pass


def test_the_fake_signature_is_the_marker_the_name_and_the_content_digest() -> None:
    assert TRUSTED.sign(b"content") == (MARKER + bytes([19]) + b"Test Capsule Signer"
                                        + hashlib.sha256(b"content").digest())
    assert TRUSTED.anchor == b"fake-signer:Test Capsule Signer"


def test_the_signer_is_described_by_its_name_and_anchor() -> None:
    verified = FakeCapsuleVerifier().verify(parse_capsule(capsule_signed_by(TRUSTED.sign)),
                                            [UNTRUSTED.anchor, TRUSTED.anchor], now=NOW)
    assert (verified.signer.subject, verified.signer.issuer, verified.signer.serial_number) == (
        "CN=Test Capsule Signer", "CN=Test Capsule Signer", 0)
    assert verified.signer.sha256_fingerprint == hashlib.sha256(TRUSTED.anchor).hexdigest()


@pytest.mark.parametrize("signature", [
    pytest.param(MARKER, id="marker-only"),
    pytest.param(MARKER + b"\x00" + bytes(32), id="empty-name"),
    pytest.param(MARKER + b"\x05abc" + bytes(32), id="short-name"),
    pytest.param(MARKER + b"\x02\xff\xfe" + bytes(32), id="name-not-utf8"),
    pytest.param(MARKER + b"\x01a" + bytes(31), id="short-digest"),
])
def test_a_malformed_fake_signature_is_a_bad_signature(signature: bytes) -> None:
    data = capsule_signed_by(lambda content: signature)
    with pytest.raises(CapsuleNotTrusted) as caught:
        FakeCapsuleVerifier().verify(parse_capsule(data), [TRUSTED.anchor], now=NOW)
    assert caught.value.reason == "bad-signature"


@pytest.mark.parametrize("name", ["", "x" * 256])
def test_a_fake_signer_needs_a_name_of_1_to_255_bytes(name: str) -> None:
    with pytest.raises(ValueError):
        FakeCapsuleSigner(name)
