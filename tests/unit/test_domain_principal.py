"""Principals: from certificate SAN URIs, and the two authorization checks."""

from __future__ import annotations

import pytest

from bios_ws.domain.principal import (
    ADMIN_URI,
    GUEST_URI_PREFIX,
    INCARNATION_URI_PREFIX,
    Principal,
    Role,
    check_domain_id,
    is_domain_id,
)
from bios_ws.errors import AccessDenied, InvalidRequest

SUBJECT = "CN=holder"
INCARNATION = INCARNATION_URI_PREFIX + "0123456789abcdef"


def test_admin_from_san() -> None:
    principal = Principal.from_san_uris(["https://example.org/", ADMIN_URI], SUBJECT)
    assert principal.role is Role.ADMIN
    assert principal.domain_id is None
    assert str(principal) == f"admin:{SUBJECT}"


def test_guest_from_san() -> None:
    principal = Principal.from_san_uris([GUEST_URI_PREFIX + "web-01", INCARNATION], SUBJECT,
                                        serial=77)
    assert principal.role is Role.GUEST
    assert principal.domain_id == "web-01"
    assert principal.incarnation == "0123456789abcdef"
    assert principal.serial == 77
    assert principal.own_domain() == "web-01"
    assert str(principal) == "guest:web-01"


@pytest.mark.parametrize("uris", [
    [],
    ["https://example.org/"],
    ["urn:vbios:role:root"],
    ["URN:VBIOS:ROLE:ADMIN"],
    [ADMIN_URI, GUEST_URI_PREFIX + "vm1"],
    [GUEST_URI_PREFIX + "vm1", GUEST_URI_PREFIX + "vm2"],
    [GUEST_URI_PREFIX + "vm1", GUEST_URI_PREFIX + "vm1"],
    [ADMIN_URI, ADMIN_URI],
])
def test_no_single_identity_is_denied(uris: list[str]) -> None:
    with pytest.raises(AccessDenied, match="no single"):
        Principal.from_san_uris(uris, SUBJECT)


@pytest.mark.parametrize("uris", [
    [GUEST_URI_PREFIX + "vm1"],
    [GUEST_URI_PREFIX + "vm1", INCARNATION, INCARNATION_URI_PREFIX + "fedcba9876543210"],
    [GUEST_URI_PREFIX + "vm1", INCARNATION_URI_PREFIX + "0123"],
    [GUEST_URI_PREFIX + "vm1", INCARNATION_URI_PREFIX + "0123456789ABCDEF"],
])
def test_a_guest_certificate_names_one_incarnation(uris: list[str]) -> None:
    with pytest.raises(AccessDenied, match="no single domain incarnation"):
        Principal.from_san_uris(uris, SUBJECT)


def test_an_admin_certificate_names_no_incarnation() -> None:
    with pytest.raises(AccessDenied, match="admin certificate names no domain incarnation"):
        Principal.from_san_uris([ADMIN_URI, INCARNATION], SUBJECT)


@pytest.mark.parametrize("domain_id", [
    "", "UPPER", "-lead", ".dot", "a b", "a/b", "x" * 64, "vm1\n", "vm\u00e9",
])
def test_invalid_domain_in_san_is_denied(domain_id: str) -> None:
    with pytest.raises(AccessDenied, match="invalid domain"):
        Principal.from_san_uris([GUEST_URI_PREFIX + domain_id], SUBJECT)


@pytest.mark.parametrize("domain_id", ["a", "vm1", "web-01.prod_eu", "0", "x" * 63])
def test_valid_domain_ids(domain_id: str) -> None:
    assert check_domain_id(domain_id) == domain_id
    assert is_domain_id(domain_id)
    assert Principal.guest(domain_id).domain_id == domain_id


@pytest.mark.parametrize("text", ["", "UPPER", "-lead", "x" * 64, "vm1\n", "a b", "~"])
def test_invalid_domain_ids(text: str) -> None:
    assert not is_domain_id(text)
    with pytest.raises(InvalidRequest):
        check_domain_id(text)


def test_invalid_domain_id_message_is_bounded() -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_domain_id("Z" * 10_000)
    assert len(caught.value.message) < 300


def test_guest_constructor_checks_the_id() -> None:
    with pytest.raises(InvalidRequest):
        Principal.guest("Bad Id")


def test_admin_has_no_own_domain() -> None:
    with pytest.raises(AccessDenied):
        Principal.admin().own_domain()


def test_guest_is_not_admin() -> None:
    with pytest.raises(AccessDenied):
        Principal.guest("vm1").require_admin()
    Principal.admin().require_admin()


def test_a_hand_built_guest_without_domain_has_none() -> None:
    with pytest.raises(AccessDenied):
        Principal(Role.GUEST, "x").own_domain()
