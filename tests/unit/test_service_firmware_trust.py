"""The admin's trusted capsule signers: admin only, every refusal leaving the set as it
was, each change audited, adding a trusted certificate again a no-op that says so."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bios_ws.domain.audit import digest_changes
from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.firmware_trust import TrustedSigner
from bios_ws.domain.principal import Principal
from bios_ws.errors import AccessDenied, InvalidRequest
from bios_ws.service.firmware_trust import (
    DISTRUST_OPERATION,
    TRUST_OPERATION,
    FirmwareTrustService,
)
from tests.firmware_pki import NOW, SignerPki, issue, make_pki

ADMIN = Principal.admin()
GUEST = Principal.guest("vm1")


@pytest.fixture(scope="module")
def pki() -> SignerPki:
    return make_pki()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def service(store: MemoryStore) -> FirmwareTrustService:
    return FirmwareTrustService(store.unit_of_work, lambda: NOW)


def trusted(store: MemoryStore) -> list[TrustedSigner]:
    with store.unit_of_work() as uow:
        return uow.firmware_trust.list()


def outcomes(store: MemoryStore) -> list[tuple[str, str, str]]:
    return [(e.principal, e.operation, e.outcome) for e in store.audit]


def test_the_admin_adds_lists_and_removes_a_root_and_a_signer(
        service: FirmwareTrustService, store: MemoryStore, pki: SignerPki) -> None:
    root = service.add(ADMIN, pki.root.cert_pem())
    leaf = service.add(ADMIN, pki.leaf.der())  # DER is accepted too
    assert root.added and leaf.added
    assert root.signer.der == pki.root.der()
    assert root.signer.subject == "CN=Test Firmware Root"
    assert root.signer.not_after == pki.root.certificate.not_valid_after_utc
    assert root.signer.added_at == NOW
    assert set(service.list(ADMIN)) == {root.signer, leaf.signer}  # one time: by fingerprint

    removed = service.remove(ADMIN, root.signer.fingerprint.upper())
    assert removed == root.signer
    assert service.remove(ADMIN, pki.leaf.cert_pem()) == leaf.signer  # by the same PEM
    assert trusted(store) == []
    assert outcomes(store) == [("admin:admin", TRUST_OPERATION, "ok")] * 2 + [
        ("admin:admin", DISTRUST_OPERATION, "ok")] * 2
    assert store.audit[0].changes_digest == digest_changes(
        {"fingerprint": root.signer.fingerprint, "subject": "CN=Test Firmware Root"})


def test_adding_a_trusted_certificate_again_changes_nothing(
        service: FirmwareTrustService, store: MemoryStore, pki: SignerPki) -> None:
    first = service.add(ADMIN, pki.root.cert_pem())
    again = service.add(ADMIN, pki.root.der())
    assert not again.added and again.signer == first.signer
    assert trusted(store) == [first.signer]
    assert len(store.audit) == 1


def test_a_guest_is_refused_and_audited(service: FirmwareTrustService, store: MemoryStore,
                                        pki: SignerPki) -> None:
    kept = service.add(ADMIN, pki.root.cert_pem()).signer
    with pytest.raises(AccessDenied):
        service.add(GUEST, pki.leaf.cert_pem())
    with pytest.raises(AccessDenied):
        service.remove(GUEST, kept.fingerprint)
    with pytest.raises(AccessDenied):
        service.list(GUEST)
    assert trusted(store) == [kept]
    assert outcomes(store)[1:] == [
        ("guest:vm1", TRUST_OPERATION, "refused:AccessDenied"),
        ("guest:vm1", DISTRUST_OPERATION, "refused:AccessDenied"),
        ("guest:vm1", "ListFirmwareSigners", "refused:AccessDenied")]


def no_usage_to_sign(pki: SignerPki) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Encipher Only")])
    certificate = (x509.CertificateBuilder().subject_name(name)
                   .issuer_name(pki.root.certificate.subject).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(NOW - timedelta(days=1))
                   .not_valid_after(NOW + timedelta(days=30))
                   .add_extension(x509.KeyUsage(
                       digital_signature=False, content_commitment=False,
                       key_encipherment=False, data_encipherment=False, key_agreement=True,
                       key_cert_sign=False, crl_sign=False, encipher_only=False,
                       decipher_only=False), critical=True)
                   .sign(pki.root.key, hashes.SHA256()))
    return certificate.public_bytes(serialization.Encoding.PEM)


@pytest.mark.parametrize("case, fragment", [
    ("garbage", "not a certificate"),
    ("bad pem", "not a PEM certificate"),
    ("two certificates", "holds 2 certificates"),
    ("cannot sign", "cannot sign"),
    ("expired", "expired on"),
    ("oversize", "at most"),
])
def test_refused_additions_leave_the_set_unchanged(
        service: FirmwareTrustService, store: MemoryStore, pki: SignerPki, case: str,
        fragment: str) -> None:
    kept = service.add(ADMIN, pki.root.cert_pem()).signer
    expired = issue("Old Signer", pki.root, ca=False, not_before=NOW - timedelta(days=400),
                    not_after=NOW - timedelta(days=1))
    data = {
        "garbage": b"\x01\x02not der",
        "bad pem": b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "two certificates": pki.leaf.cert_pem() + pki.intermediate.cert_pem(),
        "cannot sign": no_usage_to_sign(pki),
        "expired": expired.cert_pem(),
        "oversize": b"\x30" * (64 * 1024 + 1),
    }[case]
    with pytest.raises(InvalidRequest, match=fragment):
        service.add(ADMIN, data)
    assert trusted(store) == [kept]
    assert outcomes(store)[-1] == ("admin:admin", TRUST_OPERATION, "refused:InvalidRequest")


@pytest.mark.parametrize("reference", ["0" * 64, "not-a-fingerprint", "cert"])
def test_removing_what_is_not_trusted_is_refused(
        service: FirmwareTrustService, store: MemoryStore, pki: SignerPki,
        reference: str) -> None:
    kept = service.add(ADMIN, pki.root.cert_pem()).signer
    with pytest.raises(InvalidRequest):
        service.remove(ADMIN, pki.leaf.cert_pem() if reference == "cert" else reference)
    assert trusted(store) == [kept]
    assert outcomes(store)[-1] == ("admin:admin", DISTRUST_OPERATION, "refused:InvalidRequest")
