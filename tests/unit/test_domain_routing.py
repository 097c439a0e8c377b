"""The routing rules (``domain.routing``) without I/O, and the registry's view of them:
which capability serves each operation, and which capabilities may be routed."""

from __future__ import annotations

from typing import Any

import pytest

from bios_ws.capabilities import (
    CAPABILITIES,
    capability_named,
    operation_capabilities,
    routable_capabilities,
)
from bios_ws.domain.routing import (
    Remote,
    Route,
    RoutingTable,
    check_cache_seconds,
    check_remote_name,
    check_remote_url,
    table_of,
)
from bios_ws.errors import AdminError
from bios_ws.soap.callers import CALLERS

B = Remote("cloud-b", "https://b.example/", b"c", b"a")


def test_a_domain_s_own_route_wins_and_no_route_means_local() -> None:
    table = table_of([Route("settings", None, "cloud-b"), Route("settings", "vm1", "cloud-c"),
                      Route("power", "vm2", "cloud-b")], [B])
    assert table.target_for("settings", "vm1") == "cloud-c"
    assert table.target_for("settings", "vm9") == "cloud-b"
    assert table.target_for("power", "vm2") == "cloud-b"
    assert table.target_for("power", "vm1") is None
    assert table.remotes == {"cloud-b": B}


def test_routes_any_is_the_cheap_first_test() -> None:
    assert not RoutingTable().routes_any("vm1")
    only_vm2 = table_of([Route("power", "vm2", "cloud-b")], [B])
    assert only_vm2.routes_any("vm2") and not only_vm2.routes_any("vm1")
    assert table_of([Route("power", None, "cloud-b")], [B]).routes_any("vm1")


def test_the_route_in_force_carries_its_cache() -> None:
    table = table_of([Route("settings", None, "cloud-b", 60),
                      Route("settings", "vm1", "cloud-c")], [B])
    assert table.route_for("settings", "vm2") == Route("settings", None, "cloud-b", 60)
    assert table.route_for("settings", "vm1") == Route("settings", "vm1", "cloud-c", None)
    assert table.route_for("events", "vm1") is None


@pytest.mark.parametrize("seconds", [0, -1, 86_401, True, 1.5])
def test_cache_ages_out_of_range_are_refused(seconds: Any) -> None:
    with pytest.raises(AdminError, match="invalid cache age"):
        check_cache_seconds(seconds)
    assert check_cache_seconds(1) == 1 and check_cache_seconds(86_400) == 86_400


@pytest.mark.parametrize("name", ["", "local", "Cloud", "-b", "b-", "a" * 41, "b_c", "b c"])
def test_bad_remote_names_are_refused(name: str) -> None:
    with pytest.raises(AdminError):
        check_remote_name(name)


@pytest.mark.parametrize("url", ["http://b/", "https://", "b.example", "https://b /x", ""])
def test_remote_urls_are_https_with_a_host(url: str) -> None:
    with pytest.raises(AdminError, match="invalid remote URL"):
        check_remote_url(url)
    assert check_remote_url("https://10.0.0.2:8443/") == "https://10.0.0.2:8443/"


def test_every_operation_of_the_contract_has_its_capability() -> None:
    operations = operation_capabilities()
    assert set(operations) == set(CALLERS)
    assert operations["GetAttributes"] == operations["SetBootOrder"] == "settings"
    assert operations["GetQuote"] == "attestation"
    assert operations["SetSecureBoot"] == "settings"  # routed with settings
    assert operations["GetPowerState"] == "power"
    assert operations["Enroll"] == "enrollment"


def test_routability_is_read_from_the_registry() -> None:
    routable = set(routable_capabilities())
    for capability in CAPABILITIES:
        assert (capability.name in routable) == (
            capability.stays_local is None and bool(capability.soap_services))
        if capability.name not in routable:
            assert capability.why_local()
    assert routable == {"settings", "events"}  # the machine's capabilities stay local
    named = capability_named("system-management")
    assert named is not None and named.name == "system management"
    assert capability_named("nothing") is None
