"""Enrollment, renewal and provisioning state over the in-memory store and a throw-away
CA: what is issued, what is refused (and audited), and that a refusal issues nothing."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from bios_ws.domain.enrollment import ProvisioningState, Ticket, parse_bootstrap_uri
from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.principal import Principal
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.errors import AccessDenied, DomainNotFound, InvalidRequest
from bios_ws.server.identity import identity_of
from bios_ws.service.enrollment import ATTEMPTS_PER_DOMAIN, ATTEMPTS_PER_SOURCE, EnrollmentService
from tests.unit.test_service_credentials import ADMIN, Parts

URL = "https://127.0.0.1:8443/"


class Enrolling(Parts):
    def __init__(self, store: MemoryStore, registry: AttributeRegistry) -> None:
        super().__init__(store, registry)
        self.enrollment = EnrollmentService(store.unit_of_work, self.credentials,
                                            self.domains, self.clock)

    def ticket(self, domain_id: str = "g1") -> Ticket:
        ticket, uri = self.enrollment.ticket(ADMIN, domain_id, URL)
        parsed = parse_bootstrap_uri(uri)
        assert parsed.ticket == ticket
        assert parsed.ca_fingerprint == self.issuer.ca_fingerprint()
        return ticket


@pytest.fixture
def parts(store: MemoryStore, registry: AttributeRegistry) -> Enrolling:
    parts = Enrolling(store, registry)
    parts.domains.create(ADMIN, "g1")
    return parts


def csr(domain_id: str = "g1", key: ec.EllipticCurvePrivateKey | None = None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    return (x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain_id)]))
            .sign(key, hashes.SHA256()).public_bytes(Encoding.DER))


def principal_of(cert_pem: bytes) -> Principal:
    cert = x509.load_pem_x509_certificate(cert_pem)
    found = identity_of(cert.public_bytes(Encoding.DER))
    assert isinstance(found, Principal), found
    return found


def test_enroll_certifies_the_guests_own_key_for_its_incarnation(parts: Enrolling) -> None:
    assert parts.enrollment.provisioning(ADMIN, "g1").state is ProvisioningState.S2
    key = ec.generate_private_key(ec.SECP256R1())
    issued = parts.enrollment.enroll("10.0.0.5", parts.ticket(), csr(key=key))
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    assert cert.public_key() == key.public_key()
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= timedelta(days=31)
    principal = principal_of(issued.cert_pem)
    parts.credentials.authenticate(principal)
    view = parts.enrollment.provisioning(principal)
    assert view.state is ProvisioningState.S3
    assert view.certificate_not_after == cert.not_valid_after_utc
    assert ("enrollment:10.0.0.5", "Enroll", "ok") in [
        (e.principal, e.operation, e.outcome) for e in parts.store.audit]


def refused(parts: Enrolling, ticket: Ticket, reason: str, request: bytes | None = None,
            error: type[Exception] = AccessDenied) -> None:
    before = len(parts.credentials.list(ADMIN))
    with pytest.raises(error, match=reason):
        parts.enrollment.enroll("10.0.0.5", ticket, request or csr(ticket.domain_id))
    assert len(parts.credentials.list(ADMIN)) == before, "a refusal issued a certificate"
    assert parts.store.audit[-1].operation == "Enroll"
    assert parts.store.audit[-1].outcome.startswith("refused:")


def test_a_bootstrap_uri_works_once(parts: Enrolling) -> None:
    ticket = parts.ticket()
    parts.enrollment.enroll("10.0.0.5", ticket, csr())
    refused(parts, ticket, "already used")


def test_an_expired_uri_is_refused(parts: Enrolling) -> None:
    ticket = parts.ticket()
    parts.clock.now = ticket.expires_at
    refused(parts, ticket, "has expired")


@pytest.mark.parametrize("change", [{"token": "0" * 64}, {"nonce": "1" * 32},
                                    {"domain_id": "g2"}],
                         ids=["tampered-token", "tampered-nonce", "other-domain"])
def test_a_tampered_or_misdirected_uri_is_refused(parts: Enrolling,
                                                  change: dict[str, str]) -> None:
    parts.domains.create(ADMIN, "g2")
    ticket = dataclasses.replace(parts.ticket("g1"), **change)
    refused(parts, ticket, "not valid for this domain")


def test_an_uri_of_an_earlier_incarnation_or_a_deleted_domain_is_refused(
    parts: Enrolling,
) -> None:
    ticket = parts.ticket()
    parts.domains.delete(ADMIN, "g1")
    refused(parts, ticket, "does not exist")
    parts.domains.create(ADMIN, "g1")
    refused(parts, ticket, "not valid for this domain")


def test_a_request_for_another_identity_issues_nothing_and_keeps_the_uri(
    parts: Enrolling,
) -> None:
    ticket = parts.ticket()
    refused(parts, ticket, "asks for the name 'admin'", csr("admin"), InvalidRequest)
    parts.enrollment.enroll("10.0.0.5", ticket, csr())  # still usable


def test_floods_are_limited_per_source_and_per_domain(parts: Enrolling) -> None:
    bad = dataclasses.replace(parts.ticket(), token="0" * 64)
    for n in range(ATTEMPTS_PER_DOMAIN):
        with pytest.raises(AccessDenied, match="not valid"):
            parts.enrollment.enroll(f"10.0.0.{n}", bad, csr())
    refused(parts, parts.ticket(), "too many enrollment attempts for 'g1'")
    domains = [f"s{n}" for n in range(ATTEMPTS_PER_SOURCE)]
    for domain_id in domains:
        parts.domains.create(ADMIN, domain_id)
        forged = dataclasses.replace(parts.ticket(domain_id), token="0" * 64)
        with pytest.raises(AccessDenied, match="not valid"):
            parts.enrollment.enroll("10.9.9.9", forged, csr(domain_id))
    with pytest.raises(AccessDenied, match="too many enrollment attempts from this address"):
        parts.enrollment.enroll("10.9.9.9", parts.ticket("s0"), csr("s0"))


def test_renewal_revokes_the_old_certificate_when_the_new_one_is_first_used(
    parts: Enrolling,
) -> None:
    old = principal_of(parts.enrollment.enroll("10.0.0.5", parts.ticket(), csr()).cert_pem)
    renewed = parts.enrollment.renew(old, csr())
    assert renewed.record.replaces == old.serial
    parts.credentials.authenticate(old)  # still valid until the new one is used
    new = principal_of(renewed.cert_pem)
    parts.credentials.authenticate(new)
    with pytest.raises(AccessDenied, match="revoked"):
        parts.credentials.authenticate(old)
    assert old.serial in parts.crl_serials()
    operations = [e.operation for e in parts.store.audit]
    assert operations[-2:] == ["RenewCertificate", "SupersedeCertificate"]


def test_only_a_guest_renews_and_only_its_own_domain(parts: Enrolling) -> None:
    with pytest.raises(AccessDenied):
        parts.enrollment.renew(ADMIN, csr())
    guest = principal_of(parts.enrollment.enroll("10.0.0.5", parts.ticket(), csr()).cert_pem)
    with pytest.raises(InvalidRequest, match="asks for the name 'g2'"):
        parts.enrollment.renew(guest, csr("g2"))


def test_the_admin_asks_for_uris_of_existing_domains_only(parts: Enrolling) -> None:
    with pytest.raises(DomainNotFound):
        parts.enrollment.ticket(ADMIN, "nope", URL)
    with pytest.raises(AccessDenied):
        parts.enrollment.ticket(Principal.guest("g1"), "g1", URL)
    with pytest.raises(InvalidRequest, match="at most 10 minutes"):
        parts.enrollment.ticket(ADMIN, "g1", URL, timedelta(minutes=11))


def test_a_domain_without_firmware_gets_its_image_at_its_first_valid_contact(
    parts: Enrolling,
) -> None:
    parts.domains.create(ADMIN, "s1", firmware=False)
    view = parts.enrollment.provisioning(ADMIN, "s1")
    assert view.state is ProvisioningState.S1
    assert "image" in view.next_step
    ticket = parts.ticket("s1")
    refused(parts, dataclasses.replace(ticket, token="0" * 64), "not valid")
    assert not parts.domains.has_firmware("s1")  # an invalid contact changes nothing
    parts.enrollment.enroll("10.0.0.5", ticket, csr("s1"))
    assert parts.domains.has_firmware("s1")
    assert parts.enrollment.provisioning(ADMIN, "s1").state is ProvisioningState.S3
    steps = [(e.principal, e.operation) for e in parts.store.audit if e.domain_id == "s1"]
    assert steps[-2:] == [("admin:provisioning", "AssignFirmware"),
                          ("enrollment:10.0.0.5", "Enroll")]


def test_the_admin_assigns_an_image_without_enrollment(parts: Enrolling) -> None:
    parts.domains.create(ADMIN, "s1", firmware=False)
    assert parts.domains.assign_firmware(ADMIN, "s1") is True
    assert parts.domains.assign_firmware(ADMIN, "s1") is False
    assert parts.enrollment.provisioning(ADMIN, "s1").state is ProvisioningState.S2
    with pytest.raises(AccessDenied):
        parts.domains.assign_firmware(Principal.guest("s1"), "s1")
