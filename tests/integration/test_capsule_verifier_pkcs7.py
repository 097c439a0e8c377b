"""Pkcs7CapsuleVerifier keeps the CapsuleVerifier port's contract (the one FakeCapsuleVerifier
keeps in tests/unit), with real PKCS#7 signatures and certificate chains."""

from __future__ import annotations

import pytest

from bios_ws.firmware import Pkcs7CapsuleVerifier
from tests.capsule_verifier_contract import CapsuleVerifierContract, VerifierKit
from tests.firmware_pki import NOW, make_pki


@pytest.fixture(scope="module")
def kit() -> VerifierKit:
    trusted, untrusted = make_pki("Test"), make_pki("Other")
    return VerifierKit(Pkcs7CapsuleVerifier(), trusted.signing_key().sign, trusted.root.der(),
                       untrusted.signing_key().sign, "CN=Test Capsule Signer", NOW)


class TestPkcs7CapsuleVerifierContract(CapsuleVerifierContract):
    pass
