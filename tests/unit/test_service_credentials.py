"""Client credentials: issue, list, revoke, rotate, and the check of a presented
certificate, over the in-memory store and a throw-away CA (no I/O)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from cryptography import x509

from bios_ws.domain.audit import verify_chain
from bios_ws.domain.credentials import CertificateStatus, RevocationReason
from bios_ws.domain.fakes import MemoryStore
from bios_ws.domain.principal import Principal, Role
from bios_ws.domain.registry import AttributeRegistry
from bios_ws.errors import AccessDenied, AdminError, DomainNotFound
from bios_ws.pki.crl import parse_crl
from bios_ws.pki.issuer import MemoryIssuer
from bios_ws.platform.simulated import in_memory_machines
from bios_ws.server.identity import identity_of
from bios_ws.service.credentials import AUTH_CACHE_SECONDS, ClientBundle, CredentialService
from bios_ws.service.domains import DomainService
from tests.unit.conftest import StepClock

ADMIN = Principal.admin("root")


class Parts:
    def __init__(self, store: MemoryStore, registry: AttributeRegistry) -> None:
        self.clock = StepClock()
        self.issuer = MemoryIssuer(self.clock.now)
        self.store = store
        self.credentials = CredentialService(store.unit_of_work, lambda: self.issuer, self.clock)
        self.domains = DomainService(store.unit_of_work, registry, in_memory_machines(),
                                     self.clock,
                                     publish_revocations=self.credentials.publish_revocations)

    def crl_serials(self) -> frozenset[int]:
        assert self.issuer.crl_pem is not None
        return parse_crl(self.issuer.crl_pem, self.issuer.authority().cert).serials


@pytest.fixture
def parts(store: MemoryStore, registry: AttributeRegistry) -> Parts:
    return Parts(store, registry)


def presented(bundle: ClientBundle) -> Principal:
    """The principal the server derives from the bundle's certificate."""
    cert = x509.load_pem_x509_certificate(bundle.cert_pem)
    from cryptography.hazmat.primitives.serialization import Encoding

    identity = identity_of(cert.public_bytes(Encoding.DER))
    assert isinstance(identity, Principal), identity
    return identity


def test_an_issued_guest_certificate_counts_and_is_listed(parts: Parts) -> None:
    parts.domains.create(ADMIN, "vm1")
    bundle = parts.credentials.issue_guest(ADMIN, "vm1")
    principal = presented(bundle)
    parts.credentials.authenticate(principal)
    assert principal.incarnation == bundle.record.incarnation
    [record] = parts.credentials.list(ADMIN, "vm1")
    assert record == bundle.record
    assert record.status_at(parts.clock.now) is CertificateStatus.ACTIVE


def test_a_certificate_the_registry_never_issued_does_not_count(parts: Parts) -> None:
    parts.domains.create(ADMIN, "vm1")
    bundle = parts.credentials.issue_guest(ADMIN, "vm1")
    other = MemoryIssuer(parts.clock.now)  # same names, never recorded
    foreign = other.issue(Role.GUEST, "vm1", bundle.record.incarnation, parts.clock.now,
                          timedelta(days=1))
    with pytest.raises(AccessDenied, match="not issued by this installation"):
        parts.credentials.authenticate(presented(foreign))


def test_revoking_a_serial_refuses_it_and_publishes_the_crl(parts: Parts) -> None:
    parts.domains.create(ADMIN, "vm1")
    kept = parts.credentials.issue_guest(ADMIN, "vm1")
    gone = parts.credentials.issue_guest(ADMIN, "vm1")
    [revoked] = parts.credentials.revoke(ADMIN, serial=gone.record.serial,
                                         reason=RevocationReason.KEY_COMPROMISE)
    assert revoked.reason is RevocationReason.KEY_COMPROMISE
    with pytest.raises(AccessDenied, match=f"{gone.record.serial_hex}\\) was revoked"):
        parts.credentials.authenticate(presented(gone))
    parts.credentials.authenticate(presented(kept))
    assert parts.crl_serials() == {gone.record.serial}
    assert parts.credentials.revoke(ADMIN, serial=gone.record.serial) == []  # idempotent


def test_deleting_a_domain_revokes_everything_it_had_and_a_new_one_is_a_new_identity(
    parts: Parts,
) -> None:
    parts.domains.create(ADMIN, "g1")
    first = [parts.credentials.issue_guest(ADMIN, "g1") for _ in range(2)]
    parts.domains.delete(ADMIN, "g1")
    assert parts.crl_serials() == {b.record.serial for b in first}
    for bundle in first:
        with pytest.raises(AccessDenied):
            parts.credentials.authenticate(presented(bundle))
    parts.domains.create(ADMIN, "g1")
    again = parts.credentials.issue_guest(ADMIN, "g1")
    assert again.record.incarnation != first[0].record.incarnation
    parts.credentials.authenticate(presented(again))
    with pytest.raises(AccessDenied, match="revoked"):
        parts.credentials.authenticate(presented(first[0]))


def test_an_earlier_incarnation_is_refused_even_when_not_revoked(parts: Parts) -> None:
    parts.domains.create(ADMIN, "g1")
    old = parts.credentials.issue_guest(ADMIN, "g1")
    with parts.store.unit_of_work() as uow:  # as if the revocation had been lost
        uow.credentials.set_incarnation("g1", "ffffffffffffffff")
        uow.commit()
    with pytest.raises(AccessDenied, match="earlier domain named 'g1'"):
        parts.credentials.authenticate(presented(old))


def test_a_deleted_domain_answers_nothing(parts: Parts) -> None:
    parts.domains.create(ADMIN, "g1")
    old = parts.credentials.issue_guest(ADMIN, "g1")
    with parts.store.unit_of_work() as uow:  # revocation lost, domain gone
        uow.credentials.end_incarnation("g1")
        uow.commit()
    with pytest.raises(AccessDenied, match="no longer exists"):
        parts.credentials.authenticate(presented(old))


def test_an_expired_certificate_does_not_count(parts: Parts) -> None:
    parts.domains.create(ADMIN, "vm1")
    bundle = parts.credentials.issue_guest(ADMIN, "vm1")
    parts.clock.now = bundle.record.not_after + timedelta(seconds=1)
    with pytest.raises(AccessDenied, match="has expired"):
        parts.credentials.authenticate(presented(bundle))
    [record] = parts.credentials.list(ADMIN)
    assert record.status_at(parts.clock.now) is CertificateStatus.EXPIRED


def test_rotating_the_admin_revokes_every_former_admin_certificate(parts: Parts) -> None:
    first = parts.credentials.rotate_admin(ADMIN)
    second = parts.credentials.rotate_admin(ADMIN)
    parts.credentials.authenticate(presented(second))
    with pytest.raises(AccessDenied, match="revoked"):
        parts.credentials.authenticate(presented(first))
    assert parts.crl_serials() == {first.record.serial}
    [active] = [r for r in parts.credentials.list(ADMIN) if not r.revoked]
    assert active.serial == second.record.serial and active.role is Role.ADMIN


def test_revoke_admin_refuses_a_guest_serial(parts: Parts) -> None:
    parts.domains.create(ADMIN, "vm1")
    guest = parts.credentials.issue_guest(ADMIN, "vm1")
    with pytest.raises(AdminError, match="no admin certificate with serial"):
        parts.credentials.revoke(ADMIN, serial=guest.record.serial, role=Role.ADMIN)
    parts.credentials.authenticate(presented(guest))


@pytest.mark.parametrize("call", ["issue", "revoke", "rotate", "list"])
def test_guests_manage_no_credentials(parts: Parts, call: str) -> None:
    parts.domains.create(ADMIN, "vm1")
    guest = Principal.guest("vm1")
    actions = {
        "issue": lambda: parts.credentials.issue_guest(guest, "vm1"),
        "revoke": lambda: parts.credentials.revoke(guest, domain_id="vm1"),
        "rotate": lambda: parts.credentials.rotate_admin(guest),
        "list": lambda: parts.credentials.list(guest),
    }
    with pytest.raises(AccessDenied):
        actions[call]()


def test_refusals_name_what_is_missing(parts: Parts) -> None:
    with pytest.raises(DomainNotFound):
        parts.credentials.issue_guest(ADMIN, "nope")
    with pytest.raises(DomainNotFound):
        parts.credentials.revoke(ADMIN, domain_id="nope")
    with pytest.raises(AdminError, match="no certificate with serial ABC"):
        parts.credentials.revoke(ADMIN, serial=0xABC)
    with pytest.raises(AdminError, match="name one certificate serial or one domain"):
        parts.credentials.revoke(ADMIN)


def test_every_action_is_audited_and_the_chain_holds(parts: Parts, store: MemoryStore) -> None:
    parts.domains.create(ADMIN, "vm1")
    bundle = parts.credentials.issue_guest(ADMIN, "vm1")
    parts.credentials.revoke(ADMIN, serial=bundle.record.serial)
    parts.credentials.rotate_admin(ADMIN)
    with pytest.raises(AdminError):
        parts.credentials.revoke(ADMIN, serial=0xABC)
    parts.domains.delete(ADMIN, "vm1")
    operations = [(e.operation, e.outcome) for e in store.audit]
    assert operations == [
        ("CreateDomain", "ok"), ("IssueCertificate", "ok"), ("RevokeCertificate", "ok"),
        ("RotateAdmin", "ok"), ("RevokeCertificate", "refused:AdminError"),
        ("DeleteDomain", "ok"),
    ]
    assert verify_chain(store.audit) is None


def test_a_domain_created_again_sees_none_of_the_audit_of_the_deleted_one(
    parts: Parts, store: MemoryStore,
) -> None:
    parts.domains.create(ADMIN, "g1")
    parts.credentials.issue_guest(ADMIN, "g1")
    parts.domains.delete(ADMIN, "g1")
    parts.domains.create(ADMIN, "g1")
    with store.unit_of_work() as uow:
        seen = [s.entry.operation for s in uow.audit.seen_by("g1", 50)]
    assert seen == ["CreateDomain"]


def test_a_certificate_found_to_count_is_looked_up_again_after_a_second(
    parts: Parts, store: MemoryStore,
) -> None:
    """Behind the CRL (which a server checks at every handshake and request), the registry
    lookup is cached a second: a revocation made elsewhere applies here within it."""
    seconds = [100.0]
    credentials = CredentialService(store.unit_of_work, lambda: parts.issuer, parts.clock,
                                    monotonic=lambda: seconds[0])
    parts.domains.create(ADMIN, "vm1")
    bundle = parts.credentials.issue_guest(ADMIN, "vm1")
    principal = presented(bundle)
    credentials.authenticate(principal)
    with store.unit_of_work() as uow:  # another process revokes it
        uow.credentials.revoke([bundle.record.serial], parts.clock.now,
                               RevocationReason.KEY_COMPROMISE)
        uow.commit()
    seconds[0] += AUTH_CACHE_SECONDS - 0.01
    credentials.authenticate(principal)  # within the second: not looked up
    seconds[0] += 0.02
    with pytest.raises(AccessDenied, match="revoked"):
        credentials.authenticate(principal)
