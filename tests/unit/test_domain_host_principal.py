"""A host certificate and the X-Vbios-On-Behalf-Of header: who the caller is
(``Principal.on_behalf_of``), whether its certificate and grant count, and who sees the
audit entries it makes (``docs/remote.md``)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from bios_ws.domain.audit import HOST_WIDE, AuditEntry, scope_of, visible_to
from bios_ws.domain.credentials import CertificateRecord, host_refusal, refusal
from bios_ws.domain.principal import (
    ADMIN_URI,
    GUEST_URI_PREFIX,
    HOST_URI_PREFIX,
    INCARNATION_URI_PREFIX,
    Principal,
    Role,
    guest_of,
    host_of,
)
from bios_ws.errors import AccessDenied

NOW = datetime(2026, 11, 1, tzinfo=UTC)
HOST = Principal.from_san_uris([HOST_URI_PREFIX + "rack1-a"], "rack1-a", 77)
GUEST = Principal.from_san_uris([GUEST_URI_PREFIX + "vm1",
                                 INCARNATION_URI_PREFIX + "0123456789abcdef"], "vm1", 42)
ADMIN = Principal.from_san_uris([ADMIN_URI], "vbios-admin", 7)
HOST_RECORD = CertificateRecord(77, Role.HOST, None, None, "rack1-a", NOW - timedelta(days=1),
                                NOW + timedelta(days=1), NOW - timedelta(days=1))


def test_a_host_certificate_names_its_host_and_no_domain() -> None:
    assert Principal(Role.HOST, "rack1-a", None, 77, None, "rack1-a") == HOST
    assert str(HOST) == "host:rack1-a"
    assert not HOST.via_host


@pytest.mark.parametrize("uris", [
    [HOST_URI_PREFIX + "Rack"],  # upper case: no host name
    [HOST_URI_PREFIX + "-rack"],
    [HOST_URI_PREFIX],
    [HOST_URI_PREFIX + "a" * 41],
])
def test_an_invalid_host_name_is_denied(uris: list[str]) -> None:
    with pytest.raises(AccessDenied, match="invalid host"):
        Principal.from_san_uris(uris, "x", 1)


@pytest.mark.parametrize("uris", [
    [HOST_URI_PREFIX + "rack1-a", ADMIN_URI],
    [HOST_URI_PREFIX + "rack1-a", GUEST_URI_PREFIX + "vm1"],
    [HOST_URI_PREFIX + "rack1-a", HOST_URI_PREFIX + "rack1-b"],
])
def test_a_host_certificate_names_no_other_identity(uris: list[str]) -> None:
    with pytest.raises(AccessDenied, match="no single vBIOS identity"):
        Principal.from_san_uris(uris, "x", 1)


def test_a_host_certificate_names_no_incarnation() -> None:
    with pytest.raises(AccessDenied, match="no domain incarnation"):
        Principal.from_san_uris([HOST_URI_PREFIX + "rack1-a",
                                 INCARNATION_URI_PREFIX + "0123456789abcdef"], "x", 1)


def test_a_host_with_the_header_is_that_domains_guest_via_the_host() -> None:
    caller = HOST.on_behalf_of("vm1")
    assert caller.role is Role.GUEST and caller.via_host
    assert (caller.domain_id, caller.host, caller.serial, caller.incarnation) == (
        "vm1", "rack1-a", 77, None)
    assert caller.own_domain() == "vm1"
    with pytest.raises(AccessDenied, match="host admin"):
        caller.require_admin()
    assert str(caller) == "host:rack1-a for guest:vm1"


@pytest.mark.parametrize(("header", "reason"), [
    (None, "speaks only on behalf of a domain"),
    ("vm1,vm2", "more than one domain"),
    ("vm1,vm1", "more than one domain"),
    ("", "no domain id"),
    ("VM1", "no domain id"),
    ("vm 1", "no domain id"),
    ("guest:vm1", "no domain id"),
    ("x" * 64, "no domain id"),
])
def test_a_host_without_one_valid_domain_in_the_header_is_refused(header: str | None,
                                                                  reason: str) -> None:
    with pytest.raises(AccessDenied, match=reason):
        HOST.on_behalf_of(header)


@pytest.mark.parametrize("principal", [GUEST, ADMIN])
def test_the_header_on_any_other_certificate_is_refused(principal: Principal) -> None:
    assert principal.on_behalf_of(None) is principal
    with pytest.raises(AccessDenied, match="only a host certificate"):
        principal.on_behalf_of("vm1")


def test_a_guest_via_host_counts_by_the_hosts_certificate_and_its_grant() -> None:
    caller = HOST.on_behalf_of("vm1")
    assert refusal(caller, HOST_RECORD, "0123456789abcdef", NOW) is None
    assert refusal(caller, HOST_RECORD, None, NOW) is None  # no incarnation: the host's cert
    assert host_refusal(caller, granted=True) is None
    assert "may not speak for domain vm1" in str(host_refusal(caller, granted=False))
    assert host_refusal(GUEST, granted=False) is None  # a guest needs no grant


@pytest.mark.parametrize(("record", "reason"), [
    (None, "not issued by this installation"),
    (dataclasses.replace(HOST_RECORD, subject="rack1-b"), "does not name the identity"),
    (dataclasses.replace(HOST_RECORD, role=Role.GUEST, domain_id="vm1"),
     "does not name the identity"),
    (dataclasses.replace(HOST_RECORD, revoked_at=NOW), "was revoked"),
    (dataclasses.replace(HOST_RECORD, not_after=NOW), "has expired"),
])
def test_a_host_certificate_that_does_not_count_is_refused(record: CertificateRecord | None,
                                                           reason: str) -> None:
    assert reason in str(refusal(HOST.on_behalf_of("vm1"), record, None, NOW))


def test_a_guest_certificate_is_no_host_certificate() -> None:
    guest_record = dataclasses.replace(HOST_RECORD, role=Role.GUEST, domain_id="vm1",
                                       incarnation="0123456789abcdef", subject="rack1-a")
    forged = Principal(Role.GUEST, "vm1", "vm1", 77, None, "rack1-a")
    assert "does not name the identity" in str(refusal(forged, guest_record, None, NOW))


def test_principal_strings_parse_back() -> None:
    assert guest_of("host:rack1-a for guest:vm1") == "vm1"
    assert host_of("host:rack1-a for guest:vm1") == "rack1-a"
    assert guest_of("host:rack1-a") is None and host_of("host:rack1-a") == "rack1-a"
    assert host_of("guest:vm1") is None and host_of("admin:vbios-admin") is None


@pytest.mark.parametrize(("principal", "domain_id", "scope"), [
    ("host:rack1-a for guest:vm1", "vm1", "vm1"),
    ("host:rack1-a for guest:vm1", None, "vm1"),
    ("host:rack1-a", "vm1", "host:rack1-a"),  # a host's own refusal: no guest's
    ("host:rack1-a", None, "host:rack1-a"),
])
def test_scope_of_host_entries(principal: str, domain_id: str | None, scope: str) -> None:
    assert scope_of(principal, domain_id) == scope


def test_the_guest_sees_what_a_host_did_for_it_and_no_other_guest_does() -> None:
    def entry(principal: str, domain_id: str | None) -> AuditEntry:
        return AuditEntry(1, NOW, principal, "SetAttributes", domain_id, "ok", "0" * 64,
                          "0" * 64, "0" * 64)

    via = entry("host:rack1-a for guest:vm1", "vm1")
    assert visible_to("vm1", via) and not visible_to("vm2", via)
    refused = entry("host:rack1-a", "vm1")
    assert not visible_to("vm1", refused) and not visible_to("vm2", refused)
    assert scope_of("host:rack1-a", None) != HOST_WIDE
