"""A host acting as a routed domain's platform (``X-Vbios-Acting-As: platform``): who the
caller is (``Principal.on_behalf_of``), what it may call (``require_admin_of``), how the
audit writes it, and which admin operations the registry lets a platform forward
(``capabilities.platform_operations``; ``docs/remote.md``)."""

from __future__ import annotations

import pytest

from bios_ws.capabilities import (
    CAPABILITIES,
    capability_named,
    operation_capabilities,
    platform_operations,
)
from bios_ws.domain.audit import scope_of
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
from bios_ws.soap.callers import ADMIN as ADMIN_ONLY
from bios_ws.soap.callers import callers_of

HOST = Principal.from_san_uris([HOST_URI_PREFIX + "rack1-a"], "rack1-a", 77)
GUEST = Principal.from_san_uris([GUEST_URI_PREFIX + "vm1",
                                 INCARNATION_URI_PREFIX + "0123456789abcdef"], "vm1", 42)
ADMIN = Principal.from_san_uris([ADMIN_URI], "vbios-admin", 7)
PLATFORM = HOST.on_behalf_of("vm1", "platform")
VIA = HOST.on_behalf_of("vm1")


def test_a_host_with_the_marker_is_the_domains_platform_and_its_guest_otherwise() -> None:
    assert (PLATFORM.role, PLATFORM.domain_id, PLATFORM.host, PLATFORM.serial) == (
        Role.GUEST, "vm1", "rack1-a", 77)
    assert PLATFORM.platform and PLATFORM.via_host and not VIA.platform
    assert PLATFORM.own_domain() == "vm1"
    assert str(PLATFORM) == "host:rack1-a platform of vm1"
    assert str(VIA) == "host:rack1-a for guest:vm1"


def test_the_audit_reads_the_platform_as_the_domains_and_the_hosts() -> None:
    written = str(PLATFORM)
    assert guest_of(written) == "vm1" and host_of(written) == "rack1-a"
    assert scope_of(written, "vm1") == "vm1"  # the domain's guest sees what its platform did
    assert scope_of(written, "vm2") == "vm1"  # a refused attempt on another: still vm1's


def test_the_platform_may_call_its_domains_platform_operations_only() -> None:
    PLATFORM.require_admin_of("vm1")
    with pytest.raises(AccessDenied, match="platform of domain vm1 acts on that domain"):
        PLATFORM.require_admin_of("vm2")
    with pytest.raises(AccessDenied, match="host admin"):
        PLATFORM.require_admin()  # every other admin operation


@pytest.mark.parametrize("caller", [VIA, GUEST, HOST], ids=["via-host", "guest", "host"])
def test_nobody_else_but_the_admin_passes_require_admin_of(caller: Principal) -> None:
    with pytest.raises(AccessDenied, match="host admin"):
        caller.require_admin_of("vm1")


def test_the_admin_passes_require_admin_of_for_any_domain() -> None:
    ADMIN.require_admin_of("vm1")
    ADMIN.require_admin_of("vm2")


@pytest.mark.parametrize("certified", [GUEST, ADMIN], ids=["guest", "admin"])
def test_the_marker_on_any_other_certificate_is_denied(certified: Principal) -> None:
    with pytest.raises(AccessDenied, match="only a host certificate may act as"):
        certified.on_behalf_of(None, "platform")


def test_the_marker_without_the_domain_is_denied() -> None:
    with pytest.raises(AccessDenied, match="names none"):
        HOST.on_behalf_of(None, "platform")


@pytest.mark.parametrize("marker", ["Platform", "admin", "platform,platform", "", " platform"])
def test_a_marker_other_than_platform_is_denied(marker: str) -> None:
    with pytest.raises(AccessDenied, match="X-Vbios-Acting-As is not 'platform'"):
        HOST.on_behalf_of("vm1", marker)


def test_the_platform_operations_come_from_the_registry() -> None:
    assert platform_operations() == frozenset({
        "ApplyPendingAttributes", "AddSecureBootCertificate", "RemoveSecureBootCertificate"})
    owners = {c.name for c in CAPABILITIES if c.platform}
    assert owners == {"settings", "secure boot"}


@pytest.mark.parametrize("operation", sorted(platform_operations()))
def test_each_platform_operation_is_the_admins_and_follows_a_routable_route(
        operation: str) -> None:
    assert callers_of(operation) == ADMIN_ONLY  # a guest never calls it (A refuses it)
    key = operation_capabilities()[operation]
    found = capability_named(key)
    assert found is not None and found.routable
