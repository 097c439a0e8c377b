"""A host speaking for a guest, in-process: the SOAP application behind ``PeerIdentity``
as ``vbios serve`` builds it, the peer certificate in the environ as the front puts it,
and the ``X-Vbios-On-Behalf-Of`` header (``docs/remote.md``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from bios_ws.domain.principal import Principal
from bios_ws.server.identity import SOCKET_ENVIRON_KEY, PeerIdentity
from bios_ws.service.credentials import AUTH_CACHE_SECONDS, ClientBundle, CredentialService
from bios_ws.service.delegates import DelegateService
from bios_ws.soap.testing import Endpoint, WsgiResult, build_endpoint, call_wsgi, soap_envelope
from tests.integration.test_soap_operations import av, fault, values, version

HEADER = "HTTP_X_VBIOS_ON_BEHALF_OF"
ADMIN = Principal.admin()


class _Peer:
    def __init__(self, der: bytes) -> None:
        self._der = der

    def getpeercert(self, binary_form: bool = False) -> bytes:
        return self._der


def der_of(bundle: ClientBundle) -> bytes:
    return x509.load_pem_x509_certificate(bundle.cert_pem).public_bytes(Encoding.DER)


@dataclass
class Remote:
    """Installation B: domains vm1 and vm2, host rack1-a granted vm1 only."""

    ep: Endpoint
    front: PeerIdentity
    host: bytes
    guest1: bytes
    guest2: bytes
    admin: bytes

    def call(self, cert: bytes, operation: str, inner: str = "",
             headers: dict[str, str] | None = None) -> WsgiResult:
        extra: dict[str, Any] = {SOCKET_ENVIRON_KEY: _Peer(cert), **(headers or {})}
        return call_wsgi(self.front, soap_envelope(operation, inner), extra=extra)

    def as_host(self, operation: str, inner: str = "", domain: str = "vm1") -> WsgiResult:
        return self.call(self.host, operation, inner, {HEADER: domain})

    def entries(self) -> list[tuple[str, str, str | None, str]]:
        with self.ep.store.unit_of_work() as uow:
            return [(e.principal, e.operation, e.domain_id, e.outcome)
                    for e in uow.audit.recent(100)]

    def seen_by(self, domain_id: str) -> list[tuple[str, str, str]]:
        with self.ep.store.unit_of_work() as uow:
            return [(s.entry.principal, s.entry.operation, s.entry.outcome)
                    for s in uow.audit.seen_by(domain_id, 100)]


@pytest.fixture
def remote() -> Remote:
    return make_remote()


def make_remote() -> Remote:
    """B: vm1 and vm2, host rack1-a granted vm1 only."""
    ep = build_endpoint("vm1")
    ep.domains.create(ADMIN, "vm2")
    credentials = ep.use_cases.use(CredentialService)
    host = ep.use_cases.use(DelegateService).add(ADMIN, "rack1-a", ["vm1"])
    front = PeerIdentity(ep.app, authenticate=credentials.authenticate)
    admin = credentials.issuer().issue(ADMIN.role, None, None, ep.clock.now(),
                                       credentials.guest_validity)
    with ep.store.unit_of_work() as uow:
        uow.credentials.add(admin.record)
        uow.commit()
    return Remote(ep, front, der_of(host), der_of(credentials.issue_guest(ADMIN, "vm1")),
                  der_of(credentials.issue_guest(ADMIN, "vm2")), der_of(admin))


def test_a_granted_host_reads_and_writes_the_domains_settings_as_its_guest(
        remote: Remote) -> None:
    before = version(remote.as_host("GetAttributes"), "GetAttributes")
    written = remote.as_host("SetAttributes", (
        f"<tns:Attributes>{av('NumLock', 'BooleanValue', 'false')}</tns:Attributes>"
        f"<tns:ApplyTime>Immediate</tns:ApplyTime>"
        f"<tns:ExpectedVersion>{before}</tns:ExpectedVersion>"))
    assert version(written, "SetAttributes") == before + 1
    # the guest itself sees the host's write, and the same version
    own = remote.call(remote.guest1, "GetAttributes")
    assert values(own, "GetAttributes")["NumLock"] is False
    assert version(own, "GetAttributes") == before + 1
    # a stale version is refused across the hop as for the guest
    stale = remote.as_host("SetAttributes", (
        f"<tns:Attributes>{av('NumLock', 'BooleanValue', 'true')}</tns:Attributes>"
        f"<tns:ApplyTime>Immediate</tns:ApplyTime>"
        f"<tns:ExpectedVersion>{before}</tns:ExpectedVersion>"))
    fault(stale, "VersionConflict")


def test_the_hosts_calls_are_audited_as_via_host_and_seen_by_that_guest_only(
        remote: Remote) -> None:
    before = version(remote.as_host("GetAttributes"), "GetAttributes")
    remote.as_host("SetAttributes", (
        f"<tns:Attributes>{av('NumLock', 'BooleanValue', 'false')}</tns:Attributes>"
        f"<tns:ApplyTime>Immediate</tns:ApplyTime>"
        f"<tns:ExpectedVersion>{before}</tns:ExpectedVersion>"))
    via = ("host:rack1-a for guest:vm1", "SetAttributes", "ok")
    assert ("host:rack1-a for guest:vm1", "SetAttributes", "vm1", "ok") in remote.entries()
    assert via in remote.seen_by("vm1")
    assert via not in remote.seen_by("vm2")
    assert not [e for e in remote.seen_by("vm2") if "rack1-a" in e[0]]


def test_the_host_gets_the_guests_rights_and_no_admins(remote: Remote) -> None:
    fault(remote.as_host("ApplyPendingAttributes", "<tns:Domain>vm1</tns:Domain>"),
          "AccessDenied")


@pytest.mark.parametrize(("cert", "headers", "message"), [
    ("host", {HEADER: "vm2"}, "may not speak for domain vm2"),
    ("host", {HEADER: "ghost"}, "may not speak for domain ghost"),
    ("host", {}, "speaks only on behalf of a domain"),
    ("host", {HEADER: "vm1,vm1"}, "more than one domain"),
    ("host", {HEADER: "vm1,vm2"}, "more than one domain"),
    ("host", {HEADER: "VM 1"}, "no domain id"),
    ("host", {HEADER: ""}, "no domain id"),
    ("guest1", {HEADER: "vm1"}, "only a host certificate"),
    ("guest1", {HEADER: "vm2"}, "only a host certificate"),
    ("admin", {HEADER: "vm1"}, "only a host certificate"),
])
def test_refusals_are_access_denied_and_audited(remote: Remote, cert: str,
                                                headers: dict[str, str], message: str
                                                ) -> None:
    before = remote.entries()
    result = fault(remote.call(getattr(remote, cert), "GetAttributes", "", headers),
                   "AccessDenied")
    assert message in str(result.detail("Message"))
    new = remote.entries()[len(before):]
    assert len(new) == 1
    who, operation, domain_id, outcome = new[0]
    assert (operation, outcome) == ("GetAttributes", "refused:AccessDenied")
    claimed = headers.get(HEADER)
    assert domain_id == (claimed if claimed in ("vm1", "vm2", "ghost") else None)
    assert who == {"host": "host:rack1-a", "guest1": "guest:vm1",
                   "admin": "admin:vbios-admin"}[cert]
    # a host's refused attempt is no guest's to see; a guest's stays its own
    assert all("rack1-a" not in e[0] for d in ("vm1", "vm2") for e in remote.seen_by(d))


def test_no_certificate_with_the_header_is_refused(remote: Remote) -> None:
    result = call_wsgi(remote.front, soap_envelope("GetAttributes"), extra={HEADER: "vm1"})
    assert "only a host certificate" in str(fault(result, "AccessDenied").detail("Message"))


def test_a_removed_host_is_refused_at_once_and_a_revoked_one_too(remote: Remote) -> None:
    version(remote.as_host("GetAttributes"), "GetAttributes")
    delegates = remote.ep.use_cases.use(DelegateService)
    delegates.remove(ADMIN, "rack1-a")
    result = fault(remote.as_host("GetAttributes"), "AccessDenied")
    assert "was revoked" in str(result.detail("Message"))


def test_a_grant_removed_elsewhere_is_seen_within_the_authentication_bound(
        remote: Remote) -> None:
    version(remote.as_host("GetAttributes"), "GetAttributes")
    with remote.ep.store.unit_of_work() as uow:  # another process of the fleet removed it
        uow.host_grants.remove_host("rack1-a")
        uow.commit()
    time.sleep(AUTH_CACHE_SECONDS + 0.1)
    result = fault(remote.as_host("GetAttributes"), "AccessDenied")
    assert "may not speak for domain vm1" in str(result.detail("Message"))


def test_a_revoked_host_certificate_no_longer_counts(remote: Remote) -> None:
    remote.ep.use_cases.use(DelegateService).revoke(ADMIN, "rack1-a")
    time.sleep(AUTH_CACHE_SECONDS + 0.1)  # the CRL refuses it first in a real server
    assert "was revoked" in str(fault(remote.as_host("GetAttributes"), "AccessDenied")
                                .detail("Message"))


@pytest.mark.parametrize("operation", ["GetBootOrder", "GetPowerState", "GetSmbios",
                                       "GetThermal", "GetSystemEventLog",
                                       "GetPendingAttributes", "GetProvisioningState",
                                       "GetFirmwareInventory", "GetIntegrityStatus"])
def test_the_guests_read_operations_answer_the_host_as_the_guest(remote: Remote,
                                                                 operation: str) -> None:
    for_host = remote.as_host(operation)
    for_guest = remote.call(remote.guest1, operation)
    assert for_host.status == for_guest.status == 200, for_host.body
    assert for_host.fault_code() is None
    assert for_host.body == for_guest.body  # the same answer


def test_a_domain_deleted_and_made_again_is_granted_to_no_host(remote: Remote) -> None:
    version(remote.as_host("GetAttributes"), "GetAttributes")
    remote.ep.domains.delete(ADMIN, "vm1")
    remote.ep.domains.create(ADMIN, "vm1")
    remote.ep.use_cases.use(CredentialService).forget_counted()
    result = fault(remote.as_host("GetAttributes"), "AccessDenied")
    assert "may not speak for domain vm1" in str(result.detail("Message"))
    with remote.ep.store.unit_of_work() as uow:
        assert uow.host_grants.list() == []
