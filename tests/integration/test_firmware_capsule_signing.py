"""Capsule signatures: made by bios_ws.firmware, checked by it, and cross-checked with openssl
both ways (openssl verifies ours; ours verifies openssl's). Certificates are made here."""

from __future__ import annotations

import shutil
import struct
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import ExtendedKeyUsageOID

from bios_ws.domain.capsule import UnverifiedCapsule, VerifiedCapsule, parse_capsule
from bios_ws.domain.capsule_build import CapsuleSpec, build_capsule
from bios_ws.errors import CapsuleNotTrusted
from bios_ws.firmware import CapsuleSigningKey, Pkcs7CapsuleVerifier, verify_detached
from tests.firmware_pki import NOW, SignerPki, issue, make_pki, write_pem

FIRMWARE_CLASS = uuid.UUID("5b1f1c6e-8a07-4f3d-9a55-3c1d2e0f4b77")
SPEC = CapsuleSpec(image_type_id=FIRMWARE_CLASS, fw_version=0x200, lowest_supported_version=0x100,
                   monotonic_count=42)
IMAGE = bytes(range(256)) * 64
AUTH = 96  # the MonotonicCount's offset in a version-3 capsule


@pytest.fixture(scope="module")
def pki() -> SignerPki:
    return make_pki()


def capsule_signed_by(key: CapsuleSigningKey) -> bytes:
    return build_capsule(IMAGE, SPEC, key.sign)


def verify(data: bytes, *anchors: bytes) -> VerifiedCapsule:
    return Pkcs7CapsuleVerifier().verify(parse_capsule(data), list(anchors), now=NOW)


def refused(data: bytes, reason: str, *anchors: bytes) -> CapsuleNotTrusted:
    with pytest.raises(CapsuleNotTrusted) as caught:
        verify(data, *anchors)
    assert caught.value.reason == reason, caught.value.message
    return caught.value


def test_a_capsule_signed_by_a_trusted_signer_verifies(pki: SignerPki) -> None:
    verified = verify(capsule_signed_by(pki.signing_key()), pki.root.der())
    assert verified.signer.subject == "CN=Test Capsule Signer"
    assert verified.signer.issuer == "CN=Test Firmware Root"
    assert verified.signer.sha256_fingerprint == pki.leaf.certificate.fingerprint(
        hashes.SHA256()).hex()
    assert (verified.firmware_class, verified.fw_version, verified.lowest_supported_version,
            verified.monotonic_count, verified.image) == (FIRMWARE_CLASS, 0x200, 0x100, 42, IMAGE)


def test_a_chain_through_an_embedded_intermediate_verifies(pki: SignerPki) -> None:
    verified = verify(capsule_signed_by(pki.chained_signing_key()), pki.root.der())
    assert verified.signer.issuer == "CN=Test Firmware Intermediate"


def test_an_rsa_signer_verifies(pki: SignerPki) -> None:
    leaf = issue("RSA Capsule Signer", pki.root, ca=False, rsa_key=True)
    verified = verify(capsule_signed_by(CapsuleSigningKey(leaf.certificate, leaf.key)),
                      pki.root.der())
    assert verified.signer.subject == "CN=RSA Capsule Signer"


def test_a_signer_without_extended_key_usage_verifies(pki: SignerPki) -> None:
    leaf = issue("Plain Signer", pki.root, ca=False, usage=None)
    verify(capsule_signed_by(CapsuleSigningKey(leaf.certificate, leaf.key)), pki.root.der())


def test_a_tampered_image_is_refused(pki: SignerPki) -> None:
    data = bytearray(capsule_signed_by(pki.signing_key()))
    data[-1] ^= 1
    refused(bytes(data), "bad-signature", pki.root.der())


def test_a_tampered_monotonic_count_is_refused(pki: SignerPki) -> None:
    data = bytearray(capsule_signed_by(pki.signing_key()))
    struct.pack_into("<Q", data, AUTH, 43)
    refused(bytes(data), "bad-signature", pki.root.der())


def test_a_tampered_fw_version_is_refused(pki: SignerPki) -> None:
    data = capsule_signed_by(pki.signing_key())
    payload = data.index(b"MSS1")
    tampered = bytearray(data)
    struct.pack_into("<I", tampered, payload + 8, 0x300)
    refused(bytes(tampered), "bad-signature", pki.root.der())


def test_a_signer_under_another_root_is_refused(pki: SignerPki) -> None:
    other = make_pki("Other")
    refused(capsule_signed_by(other.signing_key()), "untrusted-signer", pki.root.der())
    refused(capsule_signed_by(pki.signing_key()), "untrusted-signer")  # no anchors at all


def test_a_chain_missing_its_intermediate_is_refused(pki: SignerPki) -> None:
    key = CapsuleSigningKey(pki.chained_leaf.certificate, pki.chained_leaf.key)
    refused(capsule_signed_by(key), "untrusted-signer", pki.root.der())


def test_an_expired_signer_is_refused(pki: SignerPki) -> None:
    old = issue("Expired Signer", pki.root, ca=False, not_before=NOW - timedelta(days=400),
                not_after=NOW - timedelta(days=1))
    error = refused(capsule_signed_by(CapsuleSigningKey(old.certificate, old.key)), "expired",
                    pki.root.der())
    assert "valid" in error.detail


def test_a_signer_not_yet_valid_is_refused(pki: SignerPki) -> None:
    young = issue("Future Signer", pki.root, ca=False, not_before=NOW + timedelta(days=1))
    refused(capsule_signed_by(CapsuleSigningKey(young.certificate, young.key)), "expired",
            pki.root.der())


def test_an_expired_intermediate_is_refused(pki: SignerPki) -> None:
    old_ca = issue("Old Intermediate", pki.root, ca=True, not_before=NOW - timedelta(days=400),
                   not_after=NOW - timedelta(days=1))
    leaf = issue("Signer Under Old CA", old_ca, ca=False)
    key = CapsuleSigningKey(leaf.certificate, leaf.key, (old_ca.certificate,))
    refused(capsule_signed_by(key), "expired", pki.root.der())


def test_a_tls_server_certificate_is_not_a_capsule_signer(pki: SignerPki) -> None:
    server = issue("Web Server", pki.root, ca=False, usage=ExtendedKeyUsageOID.SERVER_AUTH)
    refused(capsule_signed_by(CapsuleSigningKey(server.certificate, server.key)),
            "untrusted-signer", pki.root.der())


def test_an_unsigned_capsule_is_refused(pki: SignerPki) -> None:
    refused(build_capsule(IMAGE, SPEC, lambda content: b""), "unsigned", pki.root.der())


def test_garbage_in_place_of_the_pkcs7_is_refused(pki: SignerPki) -> None:
    refused(build_capsule(IMAGE, SPEC, lambda content: b"\x30\x03\x02\x01\x01"),
            "bad-signature", pki.root.der())


def test_signed_attributes_are_checked_against_the_content(pki: SignerPki) -> None:
    def sign_with_attributes(content: bytes) -> bytes:
        return pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(
            pki.leaf.certificate, pki.leaf.key, hashes.SHA256()).sign(
            serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature,
                                         pkcs7.PKCS7Options.Binary])

    good = build_capsule(IMAGE, SPEC, sign_with_attributes)
    assert verify(good, pki.root.der()).signer.subject == "CN=Test Capsule Signer"
    capsule = parse_capsule(good)
    with pytest.raises(CapsuleNotTrusted) as caught:
        verify_detached(capsule.authentication.signature, capsule.signed_content() + b"x",
                        [pki.root.certificate], now=NOW)
    assert caught.value.reason == "wrong-digest"


def _openssl() -> str:
    found = shutil.which("openssl")
    assert found, "openssl is required for the cross-check"
    return found


def _signed_content_file(capsule: UnverifiedCapsule, directory: Path) -> Path:
    path = directory / "content.bin"
    path.write_bytes(capsule.signed_content())
    return path


def test_openssl_verifies_a_capsule_made_by_vbios_capsule_create(pki: SignerPki,
                                                                 tmp_path: Path) -> None:
    from bios_ws.cli import main

    image = tmp_path / "image.bin"
    image.write_bytes(IMAGE)
    cert = write_pem(tmp_path / "signer.pem", pki.chained_leaf.cert_pem(),
                     pki.intermediate.cert_pem())
    key = write_pem(tmp_path / "signer.key", pki.chained_leaf.key_pem())
    root = write_pem(tmp_path / "root.pem", pki.root.cert_pem())
    out = tmp_path / "fw.cap"
    assert main(["capsule", "create", "--image", str(image), "--guid", str(FIRMWARE_CLASS),
                 "--fw-version", "0x200", "--lowest-supported", "0x100",
                 "--monotonic-count", "42", "--signer-cert", str(cert), "--signer-key",
                 str(key), "--out", str(out)]) == 0
    capsule = parse_capsule(out.read_bytes())
    signature = tmp_path / "signature.p7"
    signature.write_bytes(capsule.authentication.signature)
    content = _signed_content_file(capsule, tmp_path)
    done = subprocess.run(
        [_openssl(), "smime", "-verify", "-binary", "-inform", "DER", "-in", str(signature),
         "-content", str(content), "-CAfile", str(root), "-purpose", "any", "-out", "/dev/null"],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Verification successful" in done.stderr
    signed = capsule.signed_content()
    content.write_bytes(signed[:-8] + struct.pack("<Q", 43))  # MonotonicCount changed
    tampered = subprocess.run(
        [_openssl(), "smime", "-verify", "-binary", "-inform", "DER", "-in", str(signature),
         "-content", str(content), "-CAfile", str(root), "-purpose", "any", "-out", "/dev/null"],
        capture_output=True, text=True, timeout=60, check=False)
    assert tampered.returncode != 0


@pytest.mark.parametrize("attributes", [False, True], ids=["noattr", "with-attributes"])
def test_our_verifier_accepts_what_openssl_smime_signs(pki: SignerPki, tmp_path: Path,
                                                        attributes: bool) -> None:
    content = tmp_path / "content.bin"
    content.write_bytes(parse_capsule(capsule_signed_by(pki.signing_key())).signed_content())
    cert = write_pem(tmp_path / "signer.pem", pki.chained_leaf.cert_pem())
    key = write_pem(tmp_path / "signer.key", pki.chained_leaf.key_pem())
    chain = write_pem(tmp_path / "chain.pem", pki.intermediate.cert_pem())
    signature = tmp_path / "signature.p7"
    done = subprocess.run(
        [_openssl(), "smime", "-sign", "-binary", *(["-noattr"] if not attributes else []),
         "-outform", "DER", "-md", "sha256", "-in", str(content), "-signer", str(cert),
         "-inkey", str(key), "-certfile", str(chain), "-out", str(signature)],
        capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    signer = verify_detached(signature.read_bytes(), content.read_bytes(),
                             [pki.root.certificate], now=NOW)
    assert signer == pki.chained_leaf.certificate
    with pytest.raises(CapsuleNotTrusted) as caught:
        verify_detached(signature.read_bytes(), content.read_bytes()[:-1] + b"\x01",
                        [pki.root.certificate], now=NOW)
    assert caught.value.reason == ("wrong-digest" if attributes else "bad-signature")
