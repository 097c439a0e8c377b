"""A host acting as a routed domain's platform, on the remote, in-process: the SOAP
application behind ``PeerIdentity`` as ``vbios serve`` builds it, a host certificate,
``X-Vbios-On-Behalf-Of`` and ``X-Vbios-Acting-As: platform`` (``docs/remote.md``). The
platform of vm1 may call the platform operations for vm1 only, and is vm1's guest
otherwise; every other use of the marker is refused and audited."""

from __future__ import annotations

import hashlib
from xml.sax.saxutils import escape

import pytest

from bios_ws.domain.principal import Principal
from bios_ws.domain.state import ApplyTime
from bios_ws.service.secureboot import SecureBootService
from tests.integration.test_soap_operations import fault, values, version
from tests.integration.test_soap_via_host import HEADER, Remote, make_remote
from tests.unit.test_service_secureboot import certificate, pem

ACTING_AS = "HTTP_X_VBIOS_ACTING_AS"
PLATFORM = {HEADER: "vm1", ACTING_AS: "platform"}
AS_PLATFORM = "host:rack1-a platform of vm1"


@pytest.fixture
def remote() -> Remote:
    return make_remote()


def add_certificate(domain: str, der: bytes) -> str:
    return (f"<tns:Domain>{domain}</tns:Domain><tns:Database>db</tns:Database>"
            f"<tns:Certificate>{escape(pem(der))}</tns:Certificate>")


def db_of(remote: Remote, domain: str) -> tuple[bytes, ...]:
    return remote.ep.use_cases.use(SecureBootService)._keys(
        remote.ep.bios.state_of(domain)).db


def new_entries(remote: Remote, before: list[tuple[str, str, str | None, str]]
                ) -> list[tuple[str, str, str | None, str]]:
    return remote.entries()[len(before):]


def test_the_platform_adds_and_removes_its_domains_db_certificates(remote: Remote) -> None:
    der = certificate("platform db key")
    added = remote.call(remote.host, "AddSecureBootCertificate", add_certificate("vm1", der),
                        PLATFORM)
    assert version(added, "AddSecureBootCertificate") == remote.ep.bios.state_of("vm1").version
    assert der in db_of(remote, "vm1")
    sha = hashlib.sha256(der).hexdigest()
    removed = remote.call(remote.host, "RemoveSecureBootCertificate",
                          f"<tns:Domain>vm1</tns:Domain><tns:Database>db</tns:Database>"
                          f"<tns:Sha256>{sha}</tns:Sha256>", PLATFORM)
    version(removed, "RemoveSecureBootCertificate")
    assert der not in db_of(remote, "vm1")
    mine = [e for e in remote.entries() if e[0] == AS_PLATFORM]
    assert mine == [(AS_PLATFORM, "AddSecureBootCertificate", "vm1", "ok"),
                    (AS_PLATFORM, "RemoveSecureBootCertificate", "vm1", "ok")]
    # vm1's guest sees what its platform did; vm2's does not
    assert (AS_PLATFORM, "AddSecureBootCertificate", "ok") in remote.seen_by("vm1")
    assert not [e for e in remote.seen_by("vm2") if "rack1-a" in e[0]]


def test_the_platform_applies_its_domains_pending_values(remote: Remote) -> None:
    remote.ep.bios.set_attributes(Principal.guest("vm1"), {"NumLock": False},
                                  ApplyTime.ON_RESET)
    applied = remote.call(remote.host, "ApplyPendingAttributes",
                          "<tns:Domain>vm1</tns:Domain>", PLATFORM)
    assert version(applied, "ApplyPendingAttributes") == remote.ep.bios.state_of("vm1").version
    assert remote.ep.bios.state_of("vm1").current["NumLock"] is False
    assert (AS_PLATFORM, "ApplyPendingAttributes", "vm1", "ok") in remote.entries()


def test_the_platform_is_its_domains_guest_otherwise(remote: Remote) -> None:
    as_platform = remote.call(remote.host, "GetAttributes", "", PLATFORM)
    as_guest = remote.call(remote.guest1, "GetAttributes")
    assert values(as_platform, "GetAttributes") == values(as_guest, "GetAttributes")


@pytest.mark.parametrize(("operation", "inner"), [
    ("ApplyPendingAttributes", "<tns:Domain>vm2</tns:Domain>"),
    ("AddSecureBootCertificate", None),
    ("RemoveSecureBootCertificate", "<tns:Domain>vm2</tns:Domain><tns:Database>db"
     "</tns:Database><tns:Sha256>" + "0" * 64 + "</tns:Sha256>"),
])
def test_the_platform_names_no_other_domain(remote: Remote, operation: str,
                                            inner: str | None) -> None:
    before, state = remote.entries(), remote.ep.bios.state_of("vm2")
    body = add_certificate("vm2", certificate("x")) if inner is None else inner
    result = fault(remote.call(remote.host, operation, body, PLATFORM), "AccessDenied")
    assert "platform of domain vm1 acts on that domain only" in str(
        result.detail("Message"))
    assert new_entries(remote, before) == [(AS_PLATFORM, operation, "vm2",
                                            "refused:AccessDenied")]
    assert remote.ep.bios.state_of("vm2") == state


@pytest.mark.parametrize(("operation", "inner"), [
    ("ResetDomain", "<tns:Domain>vm1</tns:Domain><tns:ResetType>On</tns:ResetType>"),
    ("GetDomainPowerState", "<tns:Domain>vm1</tns:Domain>"),
    ("SetDomainWatchdog", "<tns:Domain>vm1</tns:Domain><tns:Enabled>true</tns:Enabled>"),
    ("GetDomainThermal", "<tns:Domain>vm1</tns:Domain>"),
    ("SetReferenceMeasurements", "<tns:Manifest>e30=</tns:Manifest>"),
    ("GetDomainFirmwareInventory", "<tns:Domain>vm1</tns:Domain>"),
])
def test_the_platform_calls_no_other_admin_operation(remote: Remote, operation: str,
                                                     inner: str) -> None:
    """Refused as a guest's call of it is, and audited as a guest's is (writes)."""
    before = remote.entries()
    result = fault(remote.call(remote.host, operation, inner, PLATFORM), "AccessDenied")
    assert "admin" in str(result.detail("Message"))
    new = new_entries(remote, before)
    fault(remote.call(remote.guest1, operation, inner), "AccessDenied")
    as_guest = new_entries(remote, before)[len(new):]
    assert [(e[1], e[3]) for e in new] == [(e[1], e[3]) for e in as_guest]
    assert [e[0] for e in new] == [AS_PLATFORM] * len(as_guest)
    if not operation.startswith("Get"):
        assert [(e[1], e[3]) for e in new] == [(operation, "refused:AccessDenied")]


@pytest.mark.parametrize(("cert", "headers", "message", "who", "domain"), [
    ("guest1", {ACTING_AS: "platform"}, "only a host certificate may act as",
     "guest:vm1", None),
    ("guest1", {HEADER: "vm1", ACTING_AS: "platform"}, "only a host certificate",
     "guest:vm1", "vm1"),
    ("admin", {ACTING_AS: "platform"}, "only a host certificate may act as",
     "admin:vbios-admin", None),
    ("host", {ACTING_AS: "platform"}, "speaks only on behalf of a domain",
     "host:rack1-a", None),
    ("host", {HEADER: "vm1", ACTING_AS: "admin"}, "X-Vbios-Acting-As is not 'platform'",
     "host:rack1-a", "vm1"),
    ("host", {HEADER: "vm2", ACTING_AS: "platform"}, "may not speak for domain vm2",
     "host:rack1-a", "vm2"),
])
def test_every_other_use_of_the_marker_is_refused_and_audited(
        remote: Remote, cert: str, headers: dict[str, str], message: str, who: str,
        domain: str | None) -> None:
    before, state = remote.entries(), remote.ep.bios.state_of("vm1")
    result = fault(remote.call(getattr(remote, cert), "ApplyPendingAttributes",
                               "<tns:Domain>vm1</tns:Domain>", headers), "AccessDenied")
    assert message in str(result.detail("Message"))
    assert new_entries(remote, before) == [(who, "ApplyPendingAttributes", domain,
                                            "refused:AccessDenied")]
    assert remote.ep.bios.state_of("vm1") == state
